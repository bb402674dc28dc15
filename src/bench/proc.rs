//! Figures the kernel keeps about this process: resident memory and per-thread CPU time.

/// Resident set size of this process in bytes (`VmRSS` in /proc/self/status).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Clock ticks per second of /proc CPU times (`USER_HZ`, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// CPU seconds (user + system) of the thread whose /proc stat file is `stat_path`.
fn cpu_s(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_S)
}

/// CPU seconds used so far by the calling thread.
pub fn this_thread_cpu_s() -> Option<f64> {
    cpu_s("/proc/thread-self/stat")
}

/// CPU seconds used so far by this process's thread named `name` (first match).
pub fn named_thread_cpu_s(name: &str) -> Option<f64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return cpu_s(&dir.join("stat").to_string_lossy());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_threads_cpu_time_is_readable_and_grows() {
        let before = this_thread_cpu_s().unwrap();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(this_thread_cpu_s().unwrap() >= before);
        assert!(rss_bytes().unwrap() > 0);
    }
}
