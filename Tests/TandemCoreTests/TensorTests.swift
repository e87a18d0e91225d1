import Testing

@testable import TandemCore

struct TensorTests {
    @Test("gathering picks whole rows in the given order")
    func gatheringRows() {
        let t = Tensor(shape: [3, 2], scalars: [0, 1, 10, 11, 20, 21])
        let g = t.gathering([2, 0])
        #expect(g.shape == [2, 2])
        #expect(g.scalars == [20, 21, 0, 1])
    }
}
