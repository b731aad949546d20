import Foundation
import Testing

@testable import BatchesAPI

/// The fast decoder must agree with the general one: same page when it accepts, and it may
/// only accept what the general decoder accepts.
@Suite("Fast page decoder agrees with JSONDecoder")
struct FastPageDecoderTests {
    static let realistic = """
        {"data":[{"id":"msgbatch_01","type":"message_batch","processing_status":"in_progress",\
        "request_counts":{"processing":10,"succeeded":0,"errored":0,"canceled":0,"expired":0},\
        "ended_at":null,"created_at":"2024-08-20T18:37:24.100435Z","expires_at":"2024-08-21T18:37:24.100435Z",\
        "archived_at":null,"cancel_initiated_at":null,"results_url":null},\
        {"id":"msgbatch_02","type":"message_batch","processing_status":"ended",\
        "request_counts":{"processing":0,"succeeded":7,"errored":1,"canceled":0,"expired":2},\
        "ended_at":"2024-08-20T20:00:00Z","created_at":"2024-08-20T18:00:00.5Z","expires_at":"2024-08-21T18:00:00.5Z",\
        "cancel_initiated_at":null,"results_url":"https://api.anthropic.com/v1/messages/batches/msgbatch_02/results"}],\
        "has_more":true,"first_id":"msgbatch_01","last_id":"msgbatch_02"}
        """

    static func agree(_ text: String) -> (fast: BatchListPage?, general: BatchListPage?) {
        let bytes = Array(text.utf8)
        return (FastPageDecoder.decode(bytes), try? BatchListPage.decodeWithFoundation(bytes))
    }

    @Test("Realistic pages decode to the same value both ways")
    func realistic() throws {
        let (fast, general) = Self.agree(Self.realistic)
        let decoded = try #require(fast)
        #expect(decoded == general)
        #expect(decoded.data.count == 2)
        #expect(decoded.data[1].requestCounts == RequestCounts(succeeded: 7, errored: 1, expired: 2))
        #expect(decoded.data[0].resultsURL == nil)
        #expect(decoded.data[1].resultsURL == "https://api.anthropic.com/v1/messages/batches/msgbatch_02/results")
        let seed = try PageDecodingTests.fixture("seed-list-page")
        let fastSeed = FastPageDecoder.decode(seed)
        let generalSeed = try BatchListPage.decodeWithFoundation(seed)
        #expect(fastSeed == generalSeed, "fast: \(String(describing: fastSeed))\ngeneral: \(generalSeed)")
        #expect(fastSeed?.data.first?.resultsURL?.hasSuffix("/results") == true)
    }

    @Test(
        "Edge cases of valid JSON decode the same both ways",
        arguments: [
            #"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#,
            #"  {"has_more":false,"data":[ ] }  "#,
            #"{"data":[{"id":"caf\u00e9 \"x\" \ud83d\ude00","processing_status":"ended","request_counts":{"processing":null,"succeeded":3}}],"has_more":false}"#,
            #"{"data":[{"id":"a","processing_status":"weird","request_counts":{},"extra":{"deep":[1,-2.5e10,true,false,null,{"k":"v"}]}}],"has_more":false,"z":0}"#,
            #"{"data":[{"id":"a","processing_status":"ended","request_counts":{"succeeded":-0},"created_at":"not a time","ended_at":"2024-02-30T00:00:00Z"}],"has_more":false}"#,
            "{\n\t\"data\" : [ ] ,\r\n \"has_more\" : true , \"last_id\" : \"x\" }",
            #"{"data":[{"id":"a","processing_status":"ended","request_counts":{},"results_url":"https:\/\/api.example\/v1\/messages\/batches\/a\/results"}],"has_more":false}"#,
            #"{"data":[{"id":"a","processing_status":"ended","request_counts":{},"results_url":"/v1/messages/batches/a/results"}],"has_more":false}"#,
        ])
    func edgeCases(text: String) {
        let (fast, general) = Self.agree(text)
        #expect(general != nil, "the general decoder must accept this")
        if let fast { #expect(fast == general) }
    }

    @Test(
        "Invalid or ill-typed pages are refused by the fast decoder too",
        arguments: [
            #"{"data":[],"has_more":false"#,
            #"{"data":[],"has_more":false} x"#,
            #"{"data":"nope","has_more":false}"#,
            #"{"data":[],"has_more":"yes"}"#,
            #"{"data":[{"id":"a","processing_status":"ended","request_counts":{"succeeded":"3"}}],"has_more":false}"#,
            #"{"data":[{"id":"a","processing_status":"ended"}],"has_more":false}"#,
            #"{"data":[],"has_more":false,"first_id":7}"#,
            #"{"data":[{"id":"a","processing_status":"ended","request_counts":{},"results_url":7}],"has_more":false}"#,
            #"{"data":[],"has_more":nul}"#,
            #"{"data":[],"has_more":false,"x":01}"#,
            #"{"data":[],"has_more":false,"x":.5}"#,
            #"{"data":[],"has_more":false,"x":"bad \x escape"}"#,
            #"{"data":[],"has_more":false,"x":"lone \ud800 surrogate"}"#,
            "{\"data\":[{\"id\":\"tab\there\",\"processing_status\":\"ended\",\"request_counts\":{}}],\"has_more\":false}",
        ])
    func invalid(text: String) {
        #expect(FastPageDecoder.decode(Array(text.utf8)) == nil)
    }

    @Test("Under thousands of random mutations the fast decoder never accepts what the general one rejects, nor disagrees")
    func mutations() {
        var random = SystemRandomNumberGenerator()
        let original = Array(Self.realistic.utf8)
        let alphabet = Array(#"{}[]:,"\ 0123456789.-eEtrufalsn"#.utf8) + [0x00, 0x0A, 0xC3, 0xA9]
        var bothAccepted = 0
        for _ in 0..<6_000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = alphabet.randomElement(using: &random)!
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
                default: bytes.remove(at: position)
                }
            }
            let fast = FastPageDecoder.decode(bytes)
            let general = try? BatchListPage.decodeWithFoundation(bytes)
            if let fast {
                #expect(general == fast, "disagreement on: \(String(decoding: bytes, as: UTF8.self))")
                if general == fast { bothAccepted += 1 }
            }
        }
        // Many mutations land in values (digits in counts, letters in ids) and stay valid: the
        // comparison above must have been exercised, not skipped.
        #expect(bothAccepted > 500, "only \(bothAccepted) mutated pages were accepted")
    }
}
