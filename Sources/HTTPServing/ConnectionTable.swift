import NIOCore

/// The open connections and whether each is working on a request. Decides admission under
/// the connection cap: when full, the connection idle the longest (no request in progress,
/// which includes a slow-loris sender still dribbling its head) makes room for the new one;
/// only when every connection is busy is the new one refused. So a flood of idle connections
/// cannot lock a scraper out, and the cap still bounds what the process holds.
struct ConnectionTable {
    struct Entry {
        let channel: any Channel
        var isBusy = false
        var idleSince: NIODeadline
    }

    enum Admission {
        case admitted
        /// Admitted after closing this idle connection.
        case admittedEvicting(any Channel)
        case refused
    }

    private(set) var entries: [ObjectIdentifier: Entry] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { entries.count }

    mutating func admit(_ channel: any Channel, now: NIODeadline) -> Admission {
        let id = ObjectIdentifier(channel)
        guard entries.count >= capacity else {
            entries[id] = Entry(channel: channel, idleSince: now)
            return .admitted
        }
        let idlest = entries.filter { !$0.value.isBusy }.min { $0.value.idleSince < $1.value.idleSince }
        guard let idlest else { return .refused }
        entries.removeValue(forKey: idlest.key)
        entries[id] = Entry(channel: channel, idleSince: now)
        return .admittedEvicting(idlest.value.channel)
    }

    mutating func setBusy(_ id: ObjectIdentifier, _ busy: Bool, now: NIODeadline) {
        entries[id]?.isBusy = busy
        if !busy { entries[id]?.idleSince = now }
    }

    mutating func remove(_ id: ObjectIdentifier) {
        entries.removeValue(forKey: id)
    }
}
