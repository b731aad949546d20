import FoundationEssentials
import RFC3339

extension BatchListPage {
    /// Decodes a list page. Unknown keys are ignored; wrong types, missing required keys and
    /// anything that is not JSON throw a ``PageDecodingError`` that says where.
    public static func decode(_ bytes: [UInt8]) throws(PageDecodingError) -> BatchListPage {
        if let page = FastPageDecoder.decode(bytes) { return page }
        return try decodeWithFoundation(bytes)
    }

    /// The general decoder: slower, and the one that explains what is wrong with a bad page.
    /// Also the reference the fast decoder is tested against.
    public static func decodeWithFoundation(_ bytes: [UInt8]) throws(PageDecodingError) -> BatchListPage {
        do {
            return try JSONDecoder().decode(WirePage.self, from: Data(bytes)).page
        } catch let error as DecodingError {
            throw PageDecodingError(error)
        } catch {
            throw PageDecodingError(message: "\(error)")
        }
    }
}

/// Why a page could not be decoded, in one line fit for a log.
public struct PageDecodingError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String

    public init(message: String) {
        self.message = message
    }

    init(_ error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String {
            let joined = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return joined.isEmpty ? "the top level" : String(joined.drop { $0 == "." })
        }
        switch error {
        case .typeMismatch(let type, let context):
            message = "\(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            message = "\(path(context.codingPath)): expected \(type), found null"
        case .keyNotFound(let key, let context):
            message = "\(path(context.codingPath + [key])): missing"
        case .dataCorrupted(let context):
            message = "not valid JSON at \(path(context.codingPath))"
        @unknown default:
            message = "\(error)"
        }
    }

    public var description: String { message }
}

/// The wire shape, kept private so the public model stays free of Codable details.
private struct WirePage: Decodable {
    let page: BatchListPage

    enum Keys: String, CodingKey {
        case data, hasMore = "has_more", firstID = "first_id", lastID = "last_id"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        page = BatchListPage(
            data: try container.decode([WireBatch].self, forKey: .data).map(\.batch),
            hasMore: try container.decode(Bool.self, forKey: .hasMore),
            firstID: try container.decodeIfPresent(String.self, forKey: .firstID),
            lastID: try container.decodeIfPresent(String.self, forKey: .lastID)
        )
    }
}

private struct WireBatch: Decodable {
    let batch: MessageBatch

    enum Keys: String, CodingKey {
        case id
        case processingStatus = "processing_status"
        case requestCounts = "request_counts"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case endedAt = "ended_at"
        case cancelInitiatedAt = "cancel_initiated_at"
        case archivedAt = "archived_at"
        case resultsURL = "results_url"
    }

    enum CountKeys: String, CodingKey {
        case processing, succeeded, errored, canceled, expired
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let counts = try container.nestedContainer(keyedBy: CountKeys.self, forKey: .requestCounts)
        // A missing count reads as 0: the sum still holds for the counts that are present, and
        // a future API that drops a zero count must not fail the whole poll.
        func count(_ key: CountKeys) throws -> Int { try counts.decodeIfPresent(Int.self, forKey: key) ?? 0 }
        func timestamp(_ key: Keys) throws -> Double? {
            try container.decodeIfPresent(String.self, forKey: key).flatMap(RFC3339.parse)
        }
        batch = MessageBatch(
            id: try container.decode(String.self, forKey: .id),
            processingStatus: ProcessingStatus(rawValue: try container.decode(String.self, forKey: .processingStatus)),
            requestCounts: RequestCounts(
                processing: try count(.processing),
                succeeded: try count(.succeeded),
                errored: try count(.errored),
                canceled: try count(.canceled),
                expired: try count(.expired)
            ),
            createdAt: try timestamp(.createdAt),
            expiresAt: try timestamp(.expiresAt),
            endedAt: try timestamp(.endedAt),
            cancelInitiatedAt: try timestamp(.cancelInitiatedAt),
            archivedAt: try timestamp(.archivedAt),
            resultsURL: try container.decodeIfPresent(String.self, forKey: .resultsURL)
        )
    }
}
