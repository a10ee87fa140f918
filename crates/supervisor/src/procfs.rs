//! Small /proc readers.

/// Resident set size of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// True when `pid` is stopped (SIGSTOP, SIGTSTP, a debugger): it runs nothing until
/// continued.
pub fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which may hold spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|s| s == "T" || s == "t")
        })
        .unwrap_or(false)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|n| n as u64)
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_running_process_is_not_stopped() {
        assert!(!super::is_stopped(std::process::id()));
        assert!(!super::is_stopped(u32::MAX));
    }

    #[test]
    fn own_rss_is_positive() {
        assert!(super::rss_bytes(std::process::id()).unwrap() > 0);
        assert!(super::rss_bytes(u32::MAX).is_none());
    }
}
