import Foundation

/// Hands received messages to the batching thread: the first waiting message opens a batch, which closes
/// when it is full or `maximumWait` after it opened (dynamic batching: a lone message waits at most that).
final class BatchQueue<Element: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    /// Each element's deadline and last use (seconds since 1970), beside it: the batcher orders by them without
    /// touching (or copying) the elements.
    private var times: [(deadline: Double, lastUse: Double)] = []
    private var closed = false
    private var woken = false

    /// Adds one element, to be answered by `deadline` and of no use after `lastUse` (seconds since 1970).
    func put(_ element: Element, deadline: Double = .infinity, lastUse: Double = .infinity) {
        condition.lock()
        items.append(element)
        times.append((deadline, lastUse))
        condition.signal()
        condition.unlock()
    }

    /// Ends a taker's wait for a first element now (it returns an empty batch if none came), so it can do other work.
    func wake() {
        condition.lock()
        woken = true
        condition.signal()
        condition.unlock()
    }

    /// Ends the queue: waiting takers get what is left, then an empty batch.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits up to `idle` (or until ``wake()``) for a first element, then up to `maximumWait` for the batch to fill to
    /// `maximum`.
    ///
    /// - Returns: the batch (empty when `idle` passed with nothing, or the queue is closed and drained).
    ///
    /// When more than `maximum` wait, the urgent ones (whose deadline is not past at `now`) go first, in arrival order,
    /// then the others; the expired ones (past their last use: no model call, only a store) are always taken, beyond
    /// `maximum`.
    func take(maximum: Int, maximumWait: TimeInterval, idle: TimeInterval, now: Double = 0) -> [Element] {
        condition.lock()
        defer { condition.unlock() }
        let idleDeadline = Date(timeIntervalSinceNow: idle)
        while items.isEmpty && !closed && !woken {
            if !condition.wait(until: idleDeadline) { break }
        }
        woken = false
        if items.isEmpty { return [] }
        let deadline = Date(timeIntervalSinceNow: maximumWait)
        while items.count < maximum && !closed {
            if !condition.wait(until: deadline) { break }
        }
        if items.count <= maximum {
            // Hands over the buffer itself: emptying it in place would copy every element first.
            defer { (items, times) = ([], []) }
            return items
        }
        let gone = times.indices.filter { now > times[$0].lastUse }
        // The usual case under load: the oldest are urgent too, and are taken as they are.
        if gone.isEmpty && times.prefix(maximum).allSatisfy({ now <= $0.deadline }) {
            defer {
                items.removeFirst(maximum)
                times.removeFirst(maximum)
            }
            return Array(items.prefix(maximum))
        }
        let limit = maximum + gone.count
        var keep = [Bool](repeating: true, count: items.count)
        for i in gone { keep[i] = false }
        var chosen = gone.count
        for i in times.indices where chosen < limit && keep[i] && now <= times[i].deadline {
            keep[i] = false
            chosen += 1
        }
        for i in times.indices where chosen < limit && keep[i] {
            keep[i] = false
            chosen += 1
        }
        var batch = [Element]()
        var rest = [Element]()
        var restTimes = [(deadline: Double, lastUse: Double)]()
        batch.reserveCapacity(chosen)
        rest.reserveCapacity(items.count - chosen)
        restTimes.reserveCapacity(items.count - chosen)
        // Moves every element to one side; the old buffer is emptied without a copy.
        var old = [Element]()
        swap(&old, &items)
        for (i, element) in old.enumerated() {
            if keep[i] {
                rest.append(element)
                restTimes.append(times[i])
            } else {
                batch.append(element)
            }
        }
        (items, times) = (rest, restTimes)
        return batch
    }

    /// Elements waiting.
    var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }

    /// Whether the queue is closed and every element taken.
    var isFinished: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed && items.isEmpty
    }
}
