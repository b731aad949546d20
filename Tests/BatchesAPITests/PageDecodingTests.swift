import BatchesAPI
import Foundation
import Testing

@Suite("Decoding list pages")
struct PageDecodingTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        return Array(try Data(contentsOf: url))
    }

    @Test("The seed documentation's example page decodes, ignoring a field the docs do not list")
    func seedExample() throws {
        let page = try BatchListPage.decode(Self.fixture("seed-list-page"))
        #expect(page.hasMore)
        #expect(page.firstID == "first_id")
        #expect(page.lastID == "last_id")
        let batch = try #require(page.data.first)
        #expect(page.data.count == 1)
        #expect(batch.id == "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF")
        #expect(batch.processingStatus == .inProgress)
        #expect(batch.requestCounts == RequestCounts(processing: 100, succeeded: 50, errored: 30, canceled: 10, expired: 10))
        // 2024-08-20T18:37:24.100435Z
        let expected = 1_724_179_044.100435
        #expect(abs((batch.createdAt ?? 0) - expected) < 1e-6)
        #expect(batch.expiresAt == batch.createdAt)
        #expect(batch.endedAt == batch.createdAt)
        #expect(batch.cancelInitiatedAt == batch.createdAt)
        #expect(batch.archivedAt == batch.createdAt)
        #expect(batch.resultsURL == "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results")
    }

    @Test("An unknown processing_status is kept as its own value, not rejected")
    func unknownStatus() throws {
        let page = try BatchListPage.decode(Array(Self.page(status: "paused_for_maintenance").utf8))
        #expect(page.data.first?.processingStatus == .other("paused_for_maintenance"))
        #expect(page.data.first?.processingStatus.rawValue == "paused_for_maintenance")
    }

    @Test("Missing archived_at and null timestamps read as nil")
    func missingAndNullTimestamps() throws {
        let page = try BatchListPage.decode(Array(Self.page(status: "ended").utf8))
        let batch = try #require(page.data.first)
        #expect(batch.archivedAt == nil)
        #expect(batch.cancelInitiatedAt == nil)
        #expect(batch.endedAt != nil)
    }

    @Test("An empty last page has null ids")
    func emptyPage() throws {
        let page = try BatchListPage.decode(Array(#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#.utf8))
        #expect(page.data.isEmpty)
        #expect(!page.hasMore)
        #expect(page.firstID == nil && page.lastID == nil)
    }

    @Test(
        "Bad pages fail with a message that says where",
        arguments: [
            (#"{"data": "nope", "has_more": false}"#, "data: expected Array"),
            (#"{"data": [], "has_more": "yes"}"#, "has_more: expected Bool"),
            (#"{"data": []}"#, "has_more: missing"),
            (#"{"data": [{"id": "x", "processing_status": "ended"}], "has_more": false}"#, "data[0].request_counts: missing"),
            (
                #"{"data": [{"id": "x", "processing_status": "ended", "request_counts": {"processing": "1"}}], "has_more": false}"#,
                "data[0].request_counts.processing: expected Int"
            ),
            (#"<html><body>502 Bad Gateway</body></html>"#, "not valid JSON"),
            (#"{"data": [{"id": "x", "processing_status": "ended", "request_co"#, "not valid JSON"),
        ]
    )
    func badPages(body: String, expectedMessage: String) {
        #expect {
            try BatchListPage.decode(Array(body.utf8))
        } throws: { error in
            (error as? PageDecodingError)?.message.contains(expectedMessage) == true
        }
    }

    static func page(status: String) -> String {
        """
        {"data":[{"id":"msgbatch_1","type":"message_batch","processing_status":"\(status)",
        "request_counts":{"processing":0,"succeeded":3,"errored":1,"canceled":0,"expired":0},
        "created_at":"2024-08-20T18:37:24.100435Z","expires_at":"2024-08-21T18:37:24.100435Z",
        "ended_at":"2024-08-20T19:37:24Z","cancel_initiated_at":null,"results_url":null}],
        "has_more":false,"first_id":"msgbatch_1","last_id":"msgbatch_1"}
        """
    }
}
