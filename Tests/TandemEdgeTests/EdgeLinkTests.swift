import Testing
import TandemEdge

struct EdgeLinkTests {
    @Test("the edge library links")
    func links() { _ = TandemEdge.self }
}
