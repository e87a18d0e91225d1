#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// The edge agent links FoundationEssentials only (no ICU, a fraction of the memory), which lacks a few
// conveniences of full Foundation; these stand in for them in every module that must stay edge-sized.

extension StringProtocol {
    /// The text without leading and trailing white space (spaces, tabs, line breaks — `\r\n` is one
    /// `Character` — and Unicode spaces).
    public func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}

/// A short human description of `error`: for file-system errors the system's text for the underlying
/// errno ("No such file or directory"), as full Foundation's `localizedDescription` gives.
public func describe(_ error: any Error) -> String {
    if let posix = error as? POSIXError {
        return String(cString: strerror(posix.code.rawValue))
    }
    if let cocoa = error as? CocoaError {
        if let posix = cocoa.underlying as? POSIXError {
            return String(cString: strerror(posix.code.rawValue))
        }
        switch cocoa.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "No such file or directory"
        case .fileReadNoPermission, .fileWriteNoPermission: return "Permission denied"
        case .fileReadCorruptFile: return "the file is corrupt"
        case .fileReadInapplicableStringEncoding: return "the file is not valid UTF-8 text"
        case .fileWriteOutOfSpace: return "No space left on device"
        default: return "file error \(cocoa.code.rawValue)"
        }
    }
    return "\(error)"
}

/// `printf`-style formatting of numbers (`"%.3g"`), which FoundationEssentials' `String` does not offer.
public func formatted(_ format: String, _ arguments: any CVarArg...) -> String {
    withVaList(arguments) { list in
        var buffer = [CChar](repeating: 0, count: 64)
        let needed = Int(vsnprintf(&buffer, buffer.count, format, list))
        guard needed >= buffer.count else { return String(cString: buffer) }
        buffer = [CChar](repeating: 0, count: needed + 1)
        return withVaList(arguments) { again in
            _ = vsnprintf(&buffer, buffer.count, format, again)
            return String(cString: buffer)
        }
    }
}
