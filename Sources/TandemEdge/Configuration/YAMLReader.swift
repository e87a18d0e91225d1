/// Reads the part of YAML a configuration file needs into a ``YAMLNode`` tree, with the standard library alone.
///
/// Read: block mappings and lists by indentation (a `- ` item's mapping may start on the item's line or on the
/// next one), flow lists `[a, b]` and mappings `{a: 1, b: {c: [1, 2]}}`, which may span lines (`[a: 1]` is a
/// list holding one single-key mapping), plain, single-quoted (`''` for `'`) and double-quoted scalars (escapes
/// such as `\"`, `\\`, `\n`, `\t`, `\u00e9`), `#` comments, blank lines, one leading `---`, CRLF line ends and a
/// byte-order mark. Every scalar stays text.
///
/// Everything else is a ``YAMLError`` naming the line, rather than a guess: tabs in indentation, anchors,
/// aliases, tags, block scalars (`|`, `>`), explicit keys (`? `), directives, a second document, duplicate keys,
/// indentation that fits no structure above it, a plain value continued on a further line, and quotes or
/// brackets left open. Quoted scalars end on the line they start on.
struct YAMLReader {
    /// One line of the text, as offsets into `bytes`, without its line break.
    private struct Line {
        /// The 1-based line number.
        var number: Int
        /// The offset of the line's first byte.
        var start: Int
        /// The offset just past the line's last byte, before `\r\n` or `\n`.
        var end: Int
        /// The offset where the line's content starts: after the leading spaces, or for a `- ` item whose content
        /// is read as a nested mapping or list, after the `- `.
        var content: Int

        /// The content's column counted from 0: every byte before it is a space or a `-`.
        var indent: Int { content - start }
    }

    private let bytes: [UInt8]
    private var lines: [Line] = []
    /// The index in `lines` of the line being read.
    private var current = 0
    /// How many collections enclose the value being read.
    private var depth = 0
    /// The deepest nesting read: a configuration needs a handful of levels, and each level is a stack frame of
    /// this recursive reader, so a file of 50,000 `[` must be an error, not a stack overflow.
    static let maximumDepth = 64

    /// Reads the one document in `text`.
    ///
    /// - Returns: The document's top-level value, or nil if the text holds only blank lines and comments.
    /// - Throws: ``YAMLError`` naming the line (and column) of the first problem.
    static func read(_ text: String) throws(YAMLError) -> YAMLNode? {
        var reader = YAMLReader(text)
        return try reader.readDocument()
    }

    private init(_ text: String) {
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        self.bytes = bytes
        var start = 0
        for offset in 0...bytes.count where offset == bytes.count || bytes[offset] == .newline {
            var end = offset
            if end > start && bytes[end - 1] == .carriageReturn { end -= 1 }
            var content = start
            while content < end && bytes[content] == .space { content += 1 }
            lines.append(Line(number: lines.count + 1, start: start, end: end, content: content))
            start = offset + 1
        }
    }

    // MARK: Block structure

    private mutating func readDocument() throws(YAMLError) -> YAMLNode? {
        while current < lines.count && isBlank(lines[current]) { current += 1 }
        if current < lines.count {
            let line = lines[current]
            if bytes[line.content] == .percent && line.indent == 0 {
                throw YAMLError(
                    .unsupported, line: line.number, column: 1, "directives ('%YAML', '%TAG') are not supported")
            }
            if isDocumentMarker(line, .hyphen) {
                var rest = line.content + 3
                skipBlanks(&rest, line)
                if rest < line.end && bytes[rest] != .hash {
                    throw YAMLError(
                        .unsupported, line: line.number, column: column(rest, line),
                        "a value on the '---' line is not supported; start the document on the next line")
                }
                current += 1
            }
        }
        guard let first = try nextContentLine() else { return nil }
        let firstLine = lines[first].number
        let root = try readBlockNode(parentIndent: -1)
        if let extra = try nextContentLine() {
            throw YAMLError(
                .indentation, line: lines[extra].number,
                "indented less than line \(firstLine), where the document's top-level value starts")
        }
        return root
    }

    /// Moves `current` to the next line with content and returns its index, or nil at the end of the text.
    ///
    /// - Throws: ``YAMLError`` if that line is indented with a tab or is a document marker (`---`, `...`).
    private mutating func nextContentLine() throws(YAMLError) -> Int? {
        while current < lines.count && isBlank(lines[current]) { current += 1 }
        guard current < lines.count else { return nil }
        let line = lines[current]
        if bytes[line.content] == .tab {
            throw YAMLError(
                .indentation, line: line.number, column: column(line.content, line),
                "a tab is used for indentation; indent with spaces")
        }
        if isDocumentMarker(line, .hyphen) {
            throw YAMLError(
                .unsupported, line: line.number, column: 1,
                "a second document ('---') is not supported; a configuration file holds one document")
        }
        if isDocumentMarker(line, .period) {
            throw YAMLError(
                .unsupported, line: line.number, column: 1, "the document end marker '...' is not supported")
        }
        return current
    }

    /// Counts one more enclosing collection; the caller undoes it when the collection ends.
    ///
    /// - Throws: ``YAMLError`` (`unsupported`) past ``maximumDepth`` levels, naming where.
    private mutating func enterCollection(_ position: Int) throws(YAMLError) {
        depth += 1
        guard depth <= Self.maximumDepth else {
            depth -= 1
            let line = lines[current]
            throw YAMLError(
                .unsupported, line: line.number, column: column(position, line),
                "values are nested more than \(Self.maximumDepth) levels deep")
        }
    }

    /// Reads the value whose first line is `current`, indented more than `parentIndent`.
    private mutating func readBlockNode(parentIndent: Int) throws(YAMLError) -> YAMLNode {
        try enterCollection(lines[current].content)
        defer { depth -= 1 }
        let line = lines[current]
        if isItem(line.content, line) { return try readSequence(indent: line.indent, compact: false) }
        if try readKey(line) != nil { return try readMapping(indent: line.indent) }
        return try readInlineValue(at: line.content, parentIndent: parentIndent)
    }

    /// Reads `key: value` lines at `indent` until a line indented less.
    private mutating func readMapping(indent: Int) throws(YAMLError) -> YAMLNode {
        var entries: [(key: String, value: YAMLNode)] = []
        var firstLines: [String: Int] = [:]
        let mappingLine = lines[current].number
        while let index = try nextContentLine() {
            let line = lines[index]
            if line.indent < indent { break }
            if line.indent > indent {
                throw YAMLError(
                    .indentation, line: line.number, column: line.indent + 1,
                    "indented \(line.indent) spaces, but the keys of the mapping on line \(mappingLine) are at \(indent)"
                )
            }
            guard let (key, afterColon) = try readKey(line) else {
                throw YAMLError(
                    .syntax, line: line.number, column: line.indent + 1,
                    "expected 'key: value' like the other keys of the mapping on line \(mappingLine)")
            }
            try Self.remember(key, line: line.number, column: line.indent + 1, in: &firstLines)
            entries.append((key, try readValue(after: afterColon, indent: indent, ofKey: true)))
        }
        return .mapping(entries)
    }

    /// Notes that `key` starts on `line` of a mapping whose keys so far are in `firstLines`; a key the
    /// mapping already has is an error naming both lines.
    private static func remember(
        _ key: String, line: Int, column: Int, in firstLines: inout [String: Int]
    ) throws(YAMLError) {
        if let first = firstLines[key] {
            throw YAMLError(
                .duplicateKey, line: line, column: column, "duplicate key '\(key)' (first on line \(first))")
        }
        firstLines[key] = line
    }

    /// Reads `- item` lines at `indent` until a line indented less, or for a `compact` list (one at its key's
    /// indentation), until a line that is not an item.
    private mutating func readSequence(indent: Int, compact: Bool) throws(YAMLError) -> YAMLNode {
        var items: [YAMLNode] = []
        let sequenceLine = lines[current].number
        while let index = try nextContentLine() {
            let line = lines[index]
            if line.indent < indent { break }
            if line.indent > indent {
                throw YAMLError(
                    .indentation, line: line.number, column: line.indent + 1,
                    "indented \(line.indent) spaces, but the items of the list on line \(sequenceLine) are at \(indent)"
                )
            }
            guard isItem(line.content, line) else {
                if compact { break }
                throw YAMLError(
                    .syntax, line: line.number, column: line.indent + 1,
                    "expected a '- ' item like the others of the list on line \(sequenceLine)")
            }
            let afterDash = line.content + 1
            var start = afterDash
            while start < line.end && bytes[start] == .space { start += 1 }
            if start < line.end && bytes[start] == .tab {
                skipBlanks(&start, line)
                if start < line.end && bytes[start] != .hash {
                    throw YAMLError(
                        .indentation, line: line.number, column: column(afterDash, line),
                        "a tab separates '-' from the item; use spaces")
                }
            }
            if start == line.end || bytes[start] == .hash {
                items.append(try readValue(after: afterDash, indent: indent, ofKey: false))
            } else {
                // The item's content is read as if it were a line of its own indented to where it starts, so a
                // mapping begun here continues on the following lines at that column.
                lines[index].content = start
                items.append(try readBlockNode(parentIndent: indent))
            }
        }
        return .sequence(items)
    }

    /// Reads the value after a key's `:` or an item's `-` at offset `start` of the current line: on this line, on
    /// the following lines indented more than `indent`, or for a key, a list at `indent` itself; else empty.
    private mutating func readValue(after start: Int, indent: Int, ofKey: Bool) throws(YAMLError) -> YAMLNode {
        let line = lines[current]
        var position = start
        skipBlanks(&position, line)
        if position == line.end || bytes[position] == .hash {
            current += 1
            guard let index = try nextContentLine() else { return .scalar("") }
            let next = lines[index]
            if next.indent > indent { return try readBlockNode(parentIndent: indent) }
            if ofKey && next.indent == indent && isItem(next.content, next) {
                return try readSequence(indent: indent, compact: true)
            }
            return .scalar("")
        }
        if isItem(position, line) {
            throw YAMLError(
                .syntax, line: line.number, column: column(position, line),
                "a list cannot start on the line of its key; put its '- ' items on the following lines")
        }
        return try readInlineValue(at: position, parentIndent: indent)
    }

    /// Reads a scalar or flow collection starting at `start` on the current line, checks that only a comment
    /// follows it and that no further-indented line seems to continue it, and moves past it.
    private mutating func readInlineValue(at start: Int, parentIndent: Int) throws(YAMLError) -> YAMLNode {
        var position = start
        let node = try readNode(&position, inFlow: false)
        let line = lines[current]
        let end = position
        skipBlanks(&position, line)
        if position < line.end && !(bytes[position] == .hash && position > end) {
            throw YAMLError(
                .syntax, line: line.number, column: column(position, line),
                "unexpected text after the value; quote the whole value if it is one")
        }
        current += 1
        if let index = try nextContentLine(), lines[index].indent > parentIndent {
            throw YAMLError(
                .unsupported, line: lines[index].number, column: lines[index].indent + 1,
                "unexpected indentation: the value on line \(line.number) is complete, and a value cannot continue on "
                    + "a further line; write it on one line, quoted if needed")
        }
        return node
    }

    /// If `line`'s content is `key:` followed by a blank or the line's end, the key and the offset after the `:`.
    private func readKey(_ line: Line) throws(YAMLError) -> (key: String, afterColon: Int)? {
        let start = line.content
        let first = bytes[start]
        if first == .doubleQuote || first == .singleQuote {
            var position = start
            let key = try readQuoted(&position, line)
            skipBlanks(&position, line)
            guard position < line.end, bytes[position] == .colon, isBlankOrEnd(position + 1, line) else { return nil }
            return (key, position + 1)
        }
        if first == .question && isBlankOrEnd(start + 1, line) {
            throw YAMLError(
                .unsupported, line: line.number, column: column(start, line), "explicit keys ('? ') are not supported")
        }
        if Self.indicators.contains(first) || isItem(start, line) { return nil }
        var position = start
        var keyEnd = start
        while position < line.end {
            let byte = bytes[position]
            if byte == .colon && isBlankOrEnd(position + 1, line) {
                guard keyEnd > start else { return nil }
                return (String(decoding: bytes[start..<keyEnd], as: UTF8.self), position + 1)
            }
            if byte == .space || byte == .tab {
                if position + 1 < line.end && bytes[position + 1] == .hash { return nil }
            } else {
                keyEnd = position + 1
            }
            position += 1
        }
        return nil
    }

    // MARK: Scalars and flow collections

    /// Bytes that cannot start a plain scalar (or a plain key).
    private static let indicators: [UInt8] = Array("[]{},#&*!|>'\"%@`".utf8)

    /// Reads one value at `position` (which is before the current line's end), leaving `position` just past it.
    /// In a flow collection plain scalars end at `,`, brackets and `: `; anywhere else, at the line's end or a
    /// comment.
    private mutating func readNode(_ position: inout Int, inFlow: Bool) throws(YAMLError) -> YAMLNode {
        let line = lines[current]
        let byte = bytes[position]
        let at = column(position, line)
        func unsupported(_ message: String) -> YAMLError {
            YAMLError(.unsupported, line: line.number, column: at, message)
        }
        func unexpected(_ message: String) -> YAMLError {
            YAMLError(.syntax, line: line.number, column: at, message)
        }
        let separated = isBlankOrEnd(position + 1, line) || (inFlow && isFlowIndicator(position + 1, line))
        switch byte {
        case .openBracket: return try readFlowSequence(&position)
        case .openBrace: return try readFlowMapping(&position)
        case .doubleQuote, .singleQuote: return .scalar(try readQuoted(&position, line))
        case .ampersand: throw unsupported("anchors ('&') are not supported")
        case .asterisk: throw unsupported("aliases ('*') are not supported")
        case .exclamation: throw unsupported("tags ('!') are not supported")
        case .pipe, .greaterThan:
            throw unsupported(
                "block scalars ('|', '>') are not supported; write the value on one line, quoted if needed")
        case .percent, .at, .backtick:
            throw unexpected("'\(Character(Unicode.Scalar(byte)))' cannot start a plain value; quote the value")
        case .comma, .closeBracket, .closeBrace, .hash:
            throw unexpected("unexpected '\(Character(Unicode.Scalar(byte)))'")
        case .question where separated: throw unsupported("explicit keys ('? ') are not supported")
        case .hyphen where separated: throw unexpected("a '- ' list item cannot start here")
        case .colon where separated: throw unexpected("unexpected ':' where a value or key belongs")
        default: return .scalar(try readPlain(&position, line, inFlow: inFlow))
        }
    }

    private func readPlain(_ position: inout Int, _ line: Line, inFlow: Bool) throws(YAMLError) -> String {
        let start = position
        var end = start
        while position < line.end {
            let byte = bytes[position]
            if byte == .space || byte == .tab {
                if position + 1 < line.end && bytes[position + 1] == .hash { break }
            } else if byte == .colon
                && (isBlankOrEnd(position + 1, line) || (inFlow && isFlowIndicator(position + 1, line)))
            {
                if inFlow { break }
                throw YAMLError(
                    .syntax, line: line.number, column: column(position, line),
                    "unexpected ': ' inside a value (a mapping cannot start here); quote the value if it holds ': '")
            } else if inFlow && isFlowIndicator(position, line) {
                break
            } else {
                end = position + 1
            }
            position += 1
        }
        position = end
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// Reads a single- or double-quoted scalar that starts at `position` and ends on the same line.
    private func readQuoted(_ position: inout Int, _ line: Line) throws(YAMLError) -> String {
        let open = position
        let quote = bytes[open]
        var text: [UInt8] = []
        position += 1
        while position < line.end {
            let byte = bytes[position]
            if byte == quote {
                if quote == .singleQuote && position + 1 < line.end && bytes[position + 1] == .singleQuote {
                    text.append(.singleQuote)
                    position += 2
                    continue
                }
                position += 1
                return String(decoding: text, as: UTF8.self)
            }
            if byte == .backslash && quote == .doubleQuote {
                try readEscape(&position, line, into: &text)
                continue
            }
            text.append(byte)
            position += 1
        }
        let kind = quote == .singleQuote ? "single" : "double"
        throw YAMLError(
            .unclosed, line: line.number, column: column(open, line),
            "\(kind) quote is not closed on its line (a quoted value must end on the line it starts)")
    }

    /// Reads the escape at `position` (a backslash) in a double-quoted scalar and appends its UTF-8 to `text`.
    private func readEscape(_ position: inout Int, _ line: Line, into text: inout [UInt8]) throws(YAMLError) {
        let escape = position
        guard position + 1 < line.end else {
            throw YAMLError(
                .unclosed, line: line.number, column: column(escape, line),
                "a backslash ends the line inside a double-quoted value; values continued on the next line are not "
                    + "supported")
        }
        let letter = bytes[position + 1]
        position += 2
        let simple: UInt8? =
            switch letter {
            case .doubleQuote, .backslash, .slash, .space: letter
            case UInt8(ascii: "n"): .newline
            case UInt8(ascii: "t"), .tab: .tab
            case UInt8(ascii: "r"): .carriageReturn
            case UInt8(ascii: "0"): 0x00
            case UInt8(ascii: "a"): 0x07
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "e"): 0x1B
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "v"): 0x0B
            default: nil
            }
        if let simple {
            text.append(simple)
            return
        }
        let value: UInt32
        switch letter {
        case UInt8(ascii: "x"): value = try readHex(&position, digits: 2, escape: escape, line)
        case UInt8(ascii: "u"): value = try readHex(&position, digits: 4, escape: escape, line)
        case UInt8(ascii: "U"): value = try readHex(&position, digits: 8, escape: escape, line)
        case UInt8(ascii: "N"): value = 0x85
        case UInt8(ascii: "_"): value = 0xA0
        case UInt8(ascii: "L"): value = 0x2028
        case UInt8(ascii: "P"): value = 0x2029
        default:
            throw YAMLError(
                .syntax, line: line.number, column: column(escape, line),
                "unknown escape '\\\(Character(Unicode.Scalar(letter)))' in a double-quoted value")
        }
        var scalarValue = value
        // A UTF-16 surrogate pair written as two \u escapes, as JSON writes characters beyond U+FFFF.
        if (0xD800..<0xDC00).contains(value), position + 1 < line.end, bytes[position] == .backslash,
            bytes[position + 1] == UInt8(ascii: "u")
        {
            var next = position + 2
            let low = try readHex(&next, digits: 4, escape: position, line)
            if (0xDC00..<0xE000).contains(low) {
                scalarValue = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                position = next
            }
        }
        guard let scalar = Unicode.Scalar(scalarValue) else {
            throw YAMLError(
                .syntax, line: line.number, column: column(escape, line),
                "the escape '\(String(decoding: bytes[escape..<position], as: UTF8.self))' is not a Unicode character")
        }
        text.append(contentsOf: scalar.utf8)
    }

    private func readHex(_ position: inout Int, digits: Int, escape: Int, _ line: Line) throws(YAMLError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard position < line.end, let digit = Self.hexValue(bytes[position]) else {
                throw YAMLError(
                    .syntax, line: line.number, column: column(escape, line),
                    "the escape '\\\(Character(Unicode.Scalar(bytes[escape + 1])))' needs \(digits) hex digits")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Reads `[a, b, …]` from its `[` at `position`, across lines if need be.
    private mutating func readFlowSequence(_ position: inout Int) throws(YAMLError) -> YAMLNode {
        try enterCollection(position)
        defer { depth -= 1 }
        let open = (line: lines[current].number, column: column(position, lines[current]))
        func unclosed() -> YAMLError {
            YAMLError(.unclosed, line: open.line, column: open.column, "'[' is never closed with ']'")
        }
        position += 1
        var items: [YAMLNode] = []
        while true {
            guard skipFlowSpace(&position) else { throw unclosed() }
            if bytes[position] == .closeBracket {
                position += 1
                return .sequence(items)
            }
            let itemLine = lines[current]
            let itemColumn = column(position, itemLine)
            var item = try readNode(&position, inFlow: true)
            guard skipFlowSpace(&position) else { throw unclosed() }
            if bytes[position] == .colon {
                // `[a: 1]` is a list holding the mapping {a: 1}.
                guard let key = item.scalar else {
                    throw YAMLError(
                        .unsupported, line: itemLine.number, column: itemColumn,
                        "a key must be plain or quoted text, not a list or mapping")
                }
                position += 1
                guard skipFlowSpace(&position) else { throw unclosed() }
                var value = YAMLNode.scalar("")
                if bytes[position] != .comma && bytes[position] != .closeBracket {
                    value = try readNode(&position, inFlow: true)
                    guard skipFlowSpace(&position) else { throw unclosed() }
                }
                item = .mapping([(key, value)])
            }
            items.append(item)
            if try endOfFlowItem(&position, closing: .closeBracket, after: "a list item") { return .sequence(items) }
        }
    }

    /// Past the item of a flow collection at `position`: a `,` (more follow: false) or the collection's
    /// closing byte (true); anything else is an error saying what was expected.
    private func endOfFlowItem(_ position: inout Int, closing: UInt8, after item: String) throws(YAMLError) -> Bool {
        switch bytes[position] {
        case .comma:
            position += 1
            return false
        case closing:
            position += 1
            return true
        default:
            throw YAMLError(
                .syntax, line: lines[current].number, column: column(position, lines[current]),
                "expected ',' or '\(Character(Unicode.Scalar(closing)))' after \(item)")
        }
    }

    /// Reads `{key: value, …}` from its `{` at `position`, across lines if need be. A key without a value
    /// (`{a, b: 1}`) has an empty one.
    private mutating func readFlowMapping(_ position: inout Int) throws(YAMLError) -> YAMLNode {
        try enterCollection(position)
        defer { depth -= 1 }
        let open = (line: lines[current].number, column: column(position, lines[current]))
        func unclosed() -> YAMLError {
            YAMLError(.unclosed, line: open.line, column: open.column, "'{' is never closed with '}'")
        }
        position += 1
        var entries: [(key: String, value: YAMLNode)] = []
        var firstLines: [String: Int] = [:]
        while true {
            guard skipFlowSpace(&position) else { throw unclosed() }
            if bytes[position] == .closeBrace {
                position += 1
                return .mapping(entries)
            }
            let keyLine = lines[current]
            let keyColumn = column(position, keyLine)
            let key: String
            switch bytes[position] {
            case .openBracket, .openBrace:
                throw YAMLError(
                    .unsupported, line: keyLine.number, column: keyColumn,
                    "a key must be plain or quoted text, not a list or mapping")
            default:
                guard let text = try readNode(&position, inFlow: true).scalar else {
                    throw YAMLError(.syntax, line: keyLine.number, column: keyColumn, "a key must be text")
                }
                key = text
            }
            try Self.remember(key, line: keyLine.number, column: keyColumn, in: &firstLines)
            guard skipFlowSpace(&position) else { throw unclosed() }
            var value = YAMLNode.scalar("")
            if bytes[position] == .colon {
                position += 1
                guard skipFlowSpace(&position) else { throw unclosed() }
                if bytes[position] != .comma && bytes[position] != .closeBrace {
                    value = try readNode(&position, inFlow: true)
                    guard skipFlowSpace(&position) else { throw unclosed() }
                }
            }
            entries.append((key, value))
            if try endOfFlowItem(&position, closing: .closeBrace, after: "a value") { return .mapping(entries) }
        }
    }

    /// Skips blanks, line breaks and comments inside a flow collection, moving `current` along.
    ///
    /// - Returns: false at the end of the text.
    private mutating func skipFlowSpace(_ position: inout Int) -> Bool {
        while true {
            let line = lines[current]
            let before = position
            skipBlanks(&position, line)
            if position < line.end && bytes[position] == .hash && (position > before || position == line.start) {
                position = line.end
            }
            if position < line.end { return true }
            guard current + 1 < lines.count else { return false }
            current += 1
            position = lines[current].start
        }
    }

    // MARK: Bytes

    private func skipBlanks(_ position: inout Int, _ line: Line) {
        while position < line.end && (bytes[position] == .space || bytes[position] == .tab) { position += 1 }
    }

    private func isBlank(_ line: Line) -> Bool {
        var position = line.content
        skipBlanks(&position, line)
        return position == line.end || bytes[position] == .hash
    }

    private func isBlankOrEnd(_ position: Int, _ line: Line) -> Bool {
        position >= line.end || bytes[position] == .space || bytes[position] == .tab
    }

    private func isFlowIndicator(_ position: Int, _ line: Line) -> Bool {
        guard position < line.end else { return false }
        switch bytes[position] {
        case .comma, .openBracket, .closeBracket, .openBrace, .closeBrace: return true
        default: return false
        }
    }

    /// Whether a `- ` (or a lone `-`) list item starts at `position`.
    private func isItem(_ position: Int, _ line: Line) -> Bool {
        position < line.end && bytes[position] == .hyphen && isBlankOrEnd(position + 1, line)
    }

    /// Whether `line` is `---` (or `...`) at its start, alone or followed by a blank.
    private func isDocumentMarker(_ line: Line, _ byte: UInt8) -> Bool {
        line.indent == 0 && line.end - line.start >= 3 && bytes[line.start] == byte && bytes[line.start + 1] == byte
            && bytes[line.start + 2] == byte && isBlankOrEnd(line.start + 3, line)
    }

    /// The 1-based column of `position` in `line`, counting Unicode scalars (UTF-8 lead bytes), not bytes.
    private func column(_ position: Int, _ line: Line) -> Int {
        var column = 1
        for offset in line.start..<min(position, line.end) where bytes[offset] & 0xC0 != 0x80 { column += 1 }
        return column
    }
}

extension UInt8 {
    fileprivate static let tab = UInt8(ascii: "\t")
    fileprivate static let newline = UInt8(ascii: "\n")
    fileprivate static let carriageReturn = UInt8(ascii: "\r")
    fileprivate static let space = UInt8(ascii: " ")
    fileprivate static let exclamation = UInt8(ascii: "!")
    fileprivate static let doubleQuote = UInt8(ascii: "\"")
    fileprivate static let hash = UInt8(ascii: "#")
    fileprivate static let percent = UInt8(ascii: "%")
    fileprivate static let ampersand = UInt8(ascii: "&")
    fileprivate static let singleQuote = UInt8(ascii: "'")
    fileprivate static let asterisk = UInt8(ascii: "*")
    fileprivate static let comma = UInt8(ascii: ",")
    fileprivate static let hyphen = UInt8(ascii: "-")
    fileprivate static let period = UInt8(ascii: ".")
    fileprivate static let slash = UInt8(ascii: "/")
    fileprivate static let colon = UInt8(ascii: ":")
    fileprivate static let greaterThan = UInt8(ascii: ">")
    fileprivate static let question = UInt8(ascii: "?")
    fileprivate static let at = UInt8(ascii: "@")
    fileprivate static let openBracket = UInt8(ascii: "[")
    fileprivate static let backslash = UInt8(ascii: "\\")
    fileprivate static let closeBracket = UInt8(ascii: "]")
    fileprivate static let backtick = UInt8(ascii: "`")
    fileprivate static let openBrace = UInt8(ascii: "{")
    fileprivate static let pipe = UInt8(ascii: "|")
    fileprivate static let closeBrace = UInt8(ascii: "}")
}
