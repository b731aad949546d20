/// Something scheduled to happen to one batch at a simulated time.
struct ScheduledEvent {
    enum Kind {
        /// Processing completes (dynamics).
        case finish
        /// The simulated user asks to cancel (dynamics).
        case requestCancel
        /// A canceling batch winds down (dynamics).
        case finishCancel
        /// 24 hours after creation: whatever is still processing expires.
        case expire
        /// 29 days after creation: results are no longer downloadable.
        case archive
        /// A scripted batch ends as its script says (``ScriptedBatch``).
        case scriptedEnd
    }

    var time: Double
    /// Breaks ties in scheduling order, so equal times replay identically.
    var sequence: UInt64
    var kind: Kind
    var batchID: String

    func precedes(_ other: Self) -> Bool {
        time < other.time || (time == other.time && sequence < other.sequence)
    }
}

/// A binary min-heap of events. Lifecycle is applied lazily, so each read pops only the events
/// due since the last one instead of scanning every batch.
struct EventQueue {
    private var heap: [ScheduledEvent] = []
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }

    var nextTime: Double? { heap.first?.time }

    mutating func schedule(_ kind: ScheduledEvent.Kind, for batchID: String, at time: Double) {
        heap.append(ScheduledEvent(time: time, sequence: nextSequence, kind: kind, batchID: batchID))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() -> ScheduledEvent? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count, heap[right].precedes(heap[smallest]) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
