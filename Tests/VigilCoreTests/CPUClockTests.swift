import Testing
import VigilCore

@Suite struct CPUClockTests {
    @Test func threadTimeGrowsWithWorkAndIsPartOfTheProcessTime() {
        let process = CPUClock.process(), thread = CPUClock.thread()
        // Work until this thread has used 20 ms of CPU (its clock must advance to end the loop).
        var sink: UInt64 = 0
        while CPUClock.thread() - thread < 0.02 {
            for i in 0..<10_000 { sink &+= UInt64(i) &* 2_654_435_761 }
        }
        let threadSpent = CPUClock.thread() - thread, processSpent = CPUClock.process() - process
        #expect(sink != 1)
        #expect(threadSpent >= 0.02)
        // The process clock counts every thread's time, this one's included.
        #expect(processSpent >= threadSpent - 0.001)
        // Seconds, not milliseconds or nanoseconds: the loop takes well under a minute.
        #expect(threadSpent < 60)
    }
}
