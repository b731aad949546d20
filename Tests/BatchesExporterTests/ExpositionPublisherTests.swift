import BatchesExporter
import Foundation
import NIOCore
import PrometheusExposition
import Testing

@Suite("Publishing the exposition")
struct ExpositionPublisherTests {
    static func text(_ store: ExpositionStore) -> String {
        guard let body = store.latest?.response(format: .text, tail: [], gzip: false) else { return "" }
        return String(buffer: body.shared)
    }

    static func family(_ value: Double) -> [MetricFamily] {
        [MetricFamily(name: "test_value", help: "A value.", type: .gauge, samples: [Sample([Label("workspace", "w")], value)])]
    }

    @Test("Changes closer together than the render interval are rendered together, shortly after")
    func coalescing() async throws {
        let store = ExpositionStore()
        let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .seconds(5), now: { 0 })
        publisher.publish(workspace: "w", families: Self.family(1), lastSuccessAt: 0)
        #expect(Self.text(store).contains(#"test_value{workspace="w"} 1"#), "the first change renders at once")
        publisher.publish(workspace: "w", families: Self.family(2), lastSuccessAt: 0)
        publisher.publish(workspace: "w", families: Self.family(3), lastSuccessAt: 0)
        #expect(Self.text(store).contains(#"test_value{workspace="w"} 1"#), "later ones wait for the interval")
        let deadline = ContinuousClock.now + .seconds(30)
        while !Self.text(store).contains(#"test_value{workspace="w"} 3"#), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(Self.text(store).contains(#"test_value{workspace="w"} 3"#), "the latest state is rendered")
    }

    @Test("Families of several workspaces are merged under one header each")
    func merging() {
        let store = ExpositionStore()
        let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
        publisher.publish(workspace: "a", families: Self.family(1), lastSuccessAt: nil)
        publisher.publish(
            workspace: "b",
            families: [MetricFamily(name: "test_value", help: "A value.", type: .gauge, samples: [Sample([Label("workspace", "b")], 2)])],
            lastSuccessAt: nil
        )
        let text = Self.text(store)
        #expect(text.components(separatedBy: "# TYPE test_value gauge").count == 2)
        #expect(text.contains(#"test_value{workspace="b"} 2"#))
        publisher.remove(workspace: "b")
        #expect(!Self.text(store).contains(#"workspace="b""#))
    }
}
