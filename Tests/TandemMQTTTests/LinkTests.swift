import Testing

@testable import TandemMQTT

struct LinkTests {
    @Test("libmosquitto links and reports version 2")
    func linksLibmosquitto() {
        #expect(libmosquittoVersion().major == 2)
    }
}
