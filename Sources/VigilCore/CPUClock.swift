#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time consumed so far, in seconds: by the calling thread or by the whole process.
/// Unlike wall time it does not grow while the thread waits for a core, a lock or the disk,
/// so it shows what a piece of work costs on a machine whose other work competes for cores.
public enum CPUClock {
    /// User and system CPU of the calling thread.
    public static func thread() -> Double { seconds(CLOCK_THREAD_CPUTIME_ID) }

    /// User and system CPU of this process, every thread.
    public static func process() -> Double { seconds(CLOCK_PROCESS_CPUTIME_ID) }

    static func seconds(_ clock: clockid_t) -> Double {
        var time = timespec()
        clock_gettime(clock, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1_000_000_000
    }
}
