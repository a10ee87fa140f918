//! Greedy CTC decoding and the dictionary.

/// The rec model's classes: 0 = blank, 1..=n = dictionary entries, n+1 = ASCII space.
pub(crate) struct Charset {
    chars: Vec<String>,
}

impl Charset {
    /// One entry per line (a model's metadata or a dictionary file), split as Python's
    /// `str.splitlines` (U+3000 is an entry, kept; CRLF ends a line).
    pub fn from_lines(text: &str) -> Charset {
        let mut chars = vec![String::new()];
        let mut cur = String::new();
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\r' => {
                    if it.peek() == Some(&'\n') {
                        it.next();
                    }
                    chars.push(std::mem::take(&mut cur));
                }
                '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
                | '\u{2029}' => chars.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            chars.push(cur);
        }
        chars.push(" ".to_string());
        Charset { chars }
    }

    /// Dictionary entries, without blank and space.
    pub fn entries(&self) -> usize {
        self.chars.len() - 2
    }

    pub fn classes(&self) -> usize {
        self.chars.len()
    }

    /// One sequence `steps` x `classes`: text and mean probability of the kept steps.
    pub fn decode(&self, probs: &[f32], classes: usize) -> (String, f32) {
        let mut text = String::new();
        let mut sum = 0.0f64;
        let mut kept = 0usize;
        let mut prev = usize::MAX;
        for step in probs.chunks_exact(classes) {
            let mut best = 0;
            let mut bp = step[0];
            for (c, &p) in step.iter().enumerate().skip(1) {
                if p > bp {
                    best = c;
                    bp = p;
                }
            }
            if best != 0 && best != prev {
                if let Some(s) = self.chars.get(best) {
                    text.push_str(s);
                }
                sum += bp as f64;
                kept += 1;
            }
            prev = best;
        }
        let score = if kept == 0 { 0.0 } else { sum / kept as f64 };
        (text, score as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_and_greedy_decode() {
        let cs = Charset::from_lines("a\nb\n\u{3000}\nc");
        assert_eq!(cs.entries(), 4);
        assert_eq!(cs.classes(), 6);
        // steps: a, a, blank, a, space, c → "aa c"
        let mut p = vec![0.0f32; 6 * 6];
        for (t, c) in [1usize, 1, 0, 1, 5, 4].iter().enumerate() {
            p[t * 6 + c] = 0.9;
        }
        let (t, s) = cs.decode(&p, 6);
        assert_eq!(t, "aa c");
        assert!((s - 0.9).abs() < 1e-6);
        // A dictionary file with Windows line ends gives the same entries.
        assert_eq!(
            Charset::from_lines("a\r\nb\r\n\u{3000}\r\nc\r\n").chars,
            cs.chars
        );
    }
}
