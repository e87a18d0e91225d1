import Foundation
import Testing

@testable import TandemEdge

struct YAMLReaderTests {
    private static func text(_ value: String) -> YAMLNode { .scalar(value) }

    private static func map(_ entries: KeyValuePairs<String, YAMLNode>) -> YAMLNode {
        .mapping(entries.map { (key: $0.key, value: $0.value) })
    }

    private static func list(_ items: YAMLNode...) -> YAMLNode { .sequence(items) }

    /// What the shipped edge-config/agent.yaml says, as Yams' basic schema read it: every value as its text, an
    /// empty string for `""`, an empty list for `[]`, keys in file order.
    static let shippedTree = map([
        "device": map(["id": text(""), "fleet": text("default")]),
        "broker": map([
            "url": text("mqtt://localhost:1883"), "username": text(""), "passwordFile": text(""),
            "caFile": text(""), "certFile": text(""), "keyFile": text(""), "keepAliveSeconds": text("30"),
            "reconnectMaxSeconds": text("10"),
        ]),
        "model": map([
            "path": text("/var/lib/tandem/model.tandem"), "trustedKeys": list(), "requireSignature": text("false"),
        ]),
        "streams": list(
            map([
                "name": text("main"), "channels": text("3"), "gapFactor": text("1.5"),
                "source": map([
                    "kind": text("stdin"), "path": text(""), "startAtEnd": text("true"),
                    "pollIntervalMs": text("250"), "host": text("127.0.0.1"), "port": text("0"), "allowFrom": list(),
                    "topic": text(""),
                    "url": text("mqtt://localhost:1883"), "maxLineBytes": text("4096"),
                ]),
            ])),
        "policy": map([
            "measure": text("maxProbability"), "threshold": text("0.5"), "budget": text("null"),
            "maxEscalationsPerSecond": text("5"), "burst": text("null"), "gain": text("0.002"),
            "auditShare": text("0.01"), "escalateNovel": text("false"), "topK": text("3"),
        ]),
        "verdictDeadlineMs": text("500"),
        "sinks": list(map(["kind": text("stdout"), "path": text(""), "flushIntervalMs": text("1000")])),
        "statusIntervalSeconds": text("30"),
        "outbox": map(["directory": text("/var/lib/tandem/outbox"), "maxBytes": text("67108864")]),
        "metrics": map(["listen": text("")]),
        "log": map(["maxMessages": text("10"), "intervalSeconds": text("10")]),
    ])

    @Test("the shipped agent.yaml reads into every key and value it states, in order, with LF or CRLF line ends")
    func shippedFile() throws {
        let path = ConfigurationTests.root.appendingPathComponent("edge-config/agent.yaml").path
        let source = try String(contentsOfFile: path, encoding: .utf8)
        for document in [source, source.replacingOccurrences(of: "\n", with: "\r\n")] {
            let tree = try #require(try YAMLReader.read(document))
            #expect(tree.mapping?.map(\.key) == Self.shippedTree.mapping?.map(\.key))
            #expect(tree == Self.shippedTree, "\(tree)")
        }
    }

    @Test("block mappings and lists nest by indentation, items hold mappings on their line or the next")
    func blockStructure() throws {
        let document = """
            # a leading comment
            name: edge   # a trailing comment
            empty:
            nested:
              inner: 1
              deeper:
                  leaf: "x"
            list:
              - a
              - b # c
            compact:
            - one
            - two
            items:
              - name: first
                size: 1
              -
                name: second
              - # this item's mapping starts on the next line
                name: third
                source:
                  kind: udp
              - - x
                - y
              -
            after: end
            """
        let expected = Self.map([
            "name": Self.text("edge"),
            "empty": Self.text(""),
            "nested": Self.map(["inner": Self.text("1"), "deeper": Self.map(["leaf": Self.text("x")])]),
            "list": Self.list(Self.text("a"), Self.text("b")),
            "compact": Self.list(Self.text("one"), Self.text("two")),
            "items": Self.list(
                Self.map(["name": Self.text("first"), "size": Self.text("1")]),
                Self.map(["name": Self.text("second")]),
                Self.map(["name": Self.text("third"), "source": Self.map(["kind": Self.text("udp")])]),
                Self.list(Self.text("x"), Self.text("y")),
                Self.text("")),
            "after": Self.text("end"),
        ])
        let tree = try YAMLReader.read(document)
        #expect(tree == expected, "\(tree.map(\.description) ?? "nil")")
    }

    @Test(
        "flow lists and mappings nest, may span lines, take trailing commas and comments, and hold `key: value` pairs")
    func flowCollections() throws {
        let document = """
            flat: [a, b , c]
            empty: []
            emptyMap: {}
            nested: {a: 1, b: {c: [1, 2]}, d: [{e: f}, []]}
            spanning: [
              one,   # the first
              "two, three",
              {k: v},
            ]
            urls: {u: mqtt://host:1883, json: {"k":"v"}}
            bare: {a, b: }
            pairs: [a: 1, "b": [2], c: , d]
            """
        let expected = Self.map([
            "flat": Self.list(Self.text("a"), Self.text("b"), Self.text("c")),
            "empty": Self.list(),
            "emptyMap": .mapping([]),
            "nested": Self.map([
                "a": Self.text("1"), "b": Self.map(["c": Self.list(Self.text("1"), Self.text("2"))]),
                "d": Self.list(Self.map(["e": Self.text("f")]), Self.list()),
            ]),
            "spanning": Self.list(Self.text("one"), Self.text("two, three"), Self.map(["k": Self.text("v")])),
            "urls": Self.map(["u": Self.text("mqtt://host:1883"), "json": Self.map(["k": Self.text("v")])]),
            "bare": Self.map(["a": Self.text(""), "b": Self.text("")]),
            "pairs": Self.list(
                Self.map(["a": Self.text("1")]), Self.map(["b": Self.list(Self.text("2"))]),
                Self.map(["c": Self.text("")]), Self.text("d")),
        ])
        let tree = try YAMLReader.read(document)
        #expect(tree == expected, "\(tree.map(\.description) ?? "nil")")
    }

    @Test("quoted scalars resolve '' and backslash escapes; every scalar stays text")
    func scalars() throws {
        let document = #"""
            single: 'it''s # not a comment'
            double: "tab\there \"q\" back\\slash\nnew é \u00e9 \U0001F600 \ud83d\ude00 \x41"
            colon: 'a: b'
            hash: a#b
            path: mqtt://h:1883/x
            "quoted key": 1
            '': empty key
            hex: 0x10
            flag: yes
            tilde: ~
            spaced: "  kept  "
            """#
        let tree = try #require(try YAMLReader.read(document))
        #expect(tree["single"] == Self.text("it's # not a comment"))
        #expect(tree["double"] == Self.text("tab\there \"q\" back\\slash\nnew é é 😀 😀 A"))
        #expect(tree["colon"] == Self.text("a: b"))
        #expect(tree["hash"] == Self.text("a#b"))
        #expect(tree["path"] == Self.text("mqtt://h:1883/x"))
        #expect(tree["quoted key"] == Self.text("1"))
        #expect(tree[""] == Self.text("empty key"))
        #expect(tree["hex"] == Self.text("0x10"))
        #expect(tree["flag"] == Self.text("yes"))
        #expect(tree["tilde"] == Self.text("~"))
        #expect(tree["spaced"] == Self.text("  kept  "))
        #expect(tree.mapping?.count == 11)
    }

    @Test("a byte-order mark, a leading ---, CRLF and blank lines are accepted; no content reads as nil")
    func framing() throws {
        let tree = try YAMLReader.read("\u{FEFF}---  # start\r\na: 1\r\n\r\n  \r\nb: [x, y]\r\n")
        #expect(tree == Self.map(["a": Self.text("1"), "b": Self.list(Self.text("x"), Self.text("y"))]))
        for empty in ["", "\n\n", "# only\n  # comments\n", "---\n"] {
            #expect(try YAMLReader.read(empty) == nil, "\(empty.debugDescription)")
        }
        #expect(try YAMLReader.read("- a\n- b\n") == Self.list(Self.text("a"), Self.text("b")))
        #expect(try YAMLReader.read("just text # and a comment") == Self.text("just text"))
    }

    static let rejected: [(document: String, line: Int, column: Int?, code: YAMLError.Code, says: String)] = [
        ("a: 1\n\tb: 2\n", 2, 1, .indentation, "tab"),
        ("-\tx\n", 1, 2, .indentation, "tab"),
        ("a:\n  b: 1\n  c: &x 2\n", 3, 6, .unsupported, "anchors"),
        ("a: 1\nb: *a\n", 2, 4, .unsupported, "aliases"),
        ("a: !!str 1\n", 1, 4, .unsupported, "tags"),
        ("a: |\n  text\n", 1, 4, .unsupported, "block scalars"),
        ("a: >-\n  text\n", 1, 4, .unsupported, "block scalars"),
        ("? a\n: b\n", 1, 1, .unsupported, "explicit keys"),
        ("%YAML 1.2\n---\na: 1\n", 1, 1, .unsupported, "directives"),
        ("a: 1\n---\nb: 2\n", 2, 1, .unsupported, "second document"),
        ("a: 1\n...\n", 2, 1, .unsupported, "'...'"),
        ("a: 1\nb: 2\na: 3\n", 3, 1, .duplicateKey, "duplicate key 'a' (first on line 1)"),
        ("x:\n  - {a: 1, b: 2, a: 3}\n", 2, 18, .duplicateKey, "duplicate key 'a'"),
        ("a:\n    b: 1\n  c: 2\n", 3, 3, .indentation, "indented 2 spaces"),
        ("streams:\n  - name: a\n   channels: 2\n", 3, 4, .indentation, "the list on line 2"),
        ("a: 1\n  b: 2\n", 2, 3, .unsupported, "cannot continue"),
        ("a: [1, 2\n\n", 1, 4, .unclosed, "'[' is never closed"),
        ("a: {b: {c: 1}\n", 1, 4, .unclosed, "'{' is never closed"),
        ("a: 'it''s\n", 1, 4, .unclosed, "single quote"),
        ("a: \"open\nb: 1\n", 1, 4, .unclosed, "double quote"),
        ("- a\nb: 1\n", 2, 1, .syntax, "'- ' item"),
        ("a: 1\n- b\n", 2, 1, .syntax, "expected 'key: value'"),
        ("a: b: c\n", 1, 5, .syntax, "': '"),
        ("a: - b\n", 1, 4, .syntax, "a list cannot start"),
        ("a: [[b]: 1]\n", 1, 5, .unsupported, "a key must be plain or quoted text"),
        ("a: {[b]: 1}\n", 1, 5, .unsupported, "a key must be plain or quoted text"),
        ("a: [a, b}\n", 1, 9, .syntax, "expected ',' or ']'"),
        ("a: {b: 1}}\n", 1, 10, .syntax, "unexpected text"),
        ("a: \"x\" y\n", 1, 8, .syntax, "unexpected text"),
        ("a: \"bad \\q\"\n", 1, 9, .syntax, "unknown escape '\\q'"),
        ("a: \"\\u12\"\n", 1, 5, .syntax, "4 hex digits"),
        ("a: \"\\ud800\"\n", 1, 5, .syntax, "not a Unicode character"),
    ]

    @Test(
        "each construct outside the subset is an error naming its line, column and what is wrong", arguments: rejected)
    func rejects(_ example: (document: String, line: Int, column: Int?, code: YAMLError.Code, says: String)) {
        do {
            let tree = try YAMLReader.read(example.document)
            Issue.record("accepted \(example.document.debugDescription) as \(tree.map(\.description) ?? "nil")")
        } catch {
            #expect(error.line == example.line, "\(error)")
            #expect(error.column == example.column, "\(error)")
            #expect(error.code == example.code, "\(error)")
            #expect(error.message.contains(example.says), "\(error)")
            #expect(error.description.hasPrefix("line \(example.line)"), "\(error)")
        }
    }

    @Test("the configuration reports a YAML error as a syntax problem with its line")
    func configurationNamesLine() {
        var config = AgentConfiguration()
        #expect {
            try config.apply(yaml: "a: [unclosed")
        } throws: { error in
            (error as? ConfigurationError)?.description
                == "not valid YAML: line 1, column 4: '[' is never closed with ']'"
        }
        #expect {
            try config.apply(yaml: "policy:\n  threshold: 0.3\n  threshold: 0.4\n")
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.code == .syntax && error.description.contains("line 3")
                && error.description.contains("duplicate key 'threshold'")
        }
        #expect(config == AgentConfiguration(), "a document that does not read changes nothing")
    }

    @Test("nesting deeper than the limit is an error naming the line, never a stack overflow")
    func nestingLimit() throws {
        for document in [
            "key: " + String(repeating: "[", count: 50_000),
            "key: " + String(repeating: "{a: ", count: 50_000),
            (0..<200).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1",
        ] {
            #expect {
                try YAMLReader.read(document)
            } throws: { error in
                (error as? YAMLError).map { $0.code == .unsupported && "\($0)".contains("nested more than") } ?? false
            }
        }
        let deepButFine = "key: " + String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { try YAMLReader.read(deepButFine) }
    }
}
