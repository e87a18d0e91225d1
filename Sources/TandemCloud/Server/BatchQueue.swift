import Foundation

/// Hands received messages to the batching thread: the first waiting message opens a batch, which closes
/// when it is full or `maximumWait` after it opened (dynamic batching: a lone message waits at most that).
final class BatchQueue<Element: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var closed = false
    private var woken = false

    /// Adds one element.
    func put(_ element: Element) {
        condition.lock()
        items.append(element)
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
    /// When more than `maximum` wait, the `urgent` ones go first (in arrival order), then the others; the `expired`
    /// ones (no model call, only a store) are always taken, beyond `maximum`.
    func take(
        maximum: Int, maximumWait: TimeInterval, idle: TimeInterval, urgent: (Element) -> Bool = { _ in true },
        expired: (Element) -> Bool = { _ in false }
    ) -> [Element] {
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
            defer { items = [] }
            return items
        }
        let gone = items.indices.filter { expired(items[$0]) }
        // The usual case under load: the oldest are urgent too, and are taken as they are.
        if gone.isEmpty && items.prefix(maximum).allSatisfy(urgent) {
            defer { items.removeFirst(maximum) }
            return Array(items.prefix(maximum))
        }
        let limit = maximum + gone.count
        var chosen = gone
        var taken = Set(gone)
        for (i, item) in items.enumerated() where chosen.count < limit && !taken.contains(i) && urgent(item) {
            chosen.append(i)
            taken.insert(i)
        }
        for i in items.indices where chosen.count < limit && !taken.contains(i) { chosen.append(i) }
        chosen.sort()
        let batch = chosen.map { items[$0] }
        var keep = [Bool](repeating: true, count: items.count)
        for i in chosen { keep[i] = false }
        items = items.indices.filter { keep[$0] }.map { items[$0] }
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
