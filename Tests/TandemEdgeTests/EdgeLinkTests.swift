import TandemEdge
import Testing

struct EdgeLinkTests {
    @Test("the edge library links")
    func links() { _ = TandemEdge.self }
}
