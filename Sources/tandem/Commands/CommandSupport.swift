import ArgumentParser
import Foundation
import TandemCore

/// Helpers shared by the subcommands: stderr logging and JSON on stdout.
enum Console {
    /// Writes a line to standard error (progress and logs; stdout stays machine-readable with `--json`).
    static func log(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Prints an `Encodable` value as pretty, key-sorted JSON on stdout.
    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// Logs which OpenBLAS core the float kernels run on, loading OpenBLAS (and choosing its core) if not yet done.
    ///
    /// Commands that train or run float models call this first, before anything starts threads.
    static func logFloatKernels() {
        log("float kernels: \(Kernels.floatKernelsDescription)")
    }

    /// Formats a fraction as a percentage with two decimals.
    static func percent(_ value: Double) -> String { String(format: "%.2f%%", value * 100) }
}

/// A failure of a subcommand with a message for the user (no stack trace, exit code 1).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ModelManifest {
    /// A version string from the model name and the current UTC time, e.g. `fcn-20261123T120501Z`.
    static func defaultVersion(name: String, date: Date = Date()) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "\(name)-\(f.string(from: date))"
    }

    /// The current UTC time in ISO 8601.
    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}

/// `--length-policy` for `.ts` archives whose series differ in length.
///
/// `require` (default) refuses unequal lengths; `pad:N` repeats each series' last value up to N samples;
/// `pad-longest` pads to the longest series; `resample:N` linearly interpolates every series to N samples.
/// Without `:N`, `pad` and `resample` use `fallbackLength` (the model's window in `tandem eval`).
struct LengthPolicyOption: ExpressibleByArgument {
    var text: String

    init?(argument: String) {
        let valid =
            ["require", "pad-longest"].contains(argument)
            || argument.range(of: #"^(pad|resample)(:[1-9][0-9]*)?$"#, options: .regularExpression) != nil
        guard valid else { return nil }
        text = argument
    }

    /// How `--help` shows a default: the argument as typed.
    var defaultValueDescription: String { text }

    /// The reader's policy; `fallbackLength` fills in `pad` or `resample` written without a length.
    func policy(fallbackLength: Int?) throws -> TSArchive.LengthPolicy {
        let parts = text.split(separator: ":")
        let length = parts.count > 1 ? Int(parts[1]) : fallbackLength
        switch parts[0] {
        case "require": return .requireEqual
        case "pad-longest": return .padToLongest
        case "pad", "resample":
            guard let length else {
                throw CommandFailure("--length-policy \(text) needs a length: \(parts[0]):N")
            }
            return parts[0] == "pad" ? .padTo(length) : .resample(to: length)
        default: return .requireEqual
        }
    }
}

extension LabeledWindows {
    /// These windows checked against a model's input shape and classes, relabeled to the model's class order.
    ///
    /// - Parameters:
    ///   - manifest: the model's manifest.
    ///   - data: where the windows came from, for the message.
    ///   - role: how the message names the model ("the model", "the teacher").
    /// - Throws: `CommandFailure` if the window shape differs or a class is unknown to the model.
    func fitted(to manifest: ModelManifest, data: String, role: String = "the model") throws -> LabeledWindows {
        let input = manifest.input
        guard channels == input.channels, length == input.window else {
            throw CommandFailure(
                "\(data): windows are \(length)×\(channels), \(role) takes \(input.window)×\(input.channels)")
        }
        let unknown = Set(classNames).subtracting(manifest.classNames)
        guard unknown.isEmpty else {
            throw CommandFailure("\(data): classes \(unknown.sorted()) are not among \(role)'s \(manifest.classNames)")
        }
        return relabeled(to: manifest.classNames)
    }
}
