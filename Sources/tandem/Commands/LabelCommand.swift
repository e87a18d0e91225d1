import ArgumentParser
import Foundation
import TandemProtocol

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `tandem label`: sends an operator's ground truth to a tandem-cloud worker's `POST /v1/labels`.
struct LabelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract:
            "Send ground truth to tandem-cloud: for one escalation id, or for a device's stream over a time range.",
        discussion: """
            Either --escalation ID, or --device, --stream, --start and --end: the latter labels every stored \
            escalation of that device and stream (of --fleet, if given) whose window starts within START…END \
            (inclusive; on the device's clock), and the reply says how many. Times are seconds since 1970 or ISO \
            8601 (2026-12-07T10:40:00Z); a range may span at most 31 days. --class is a class name of the full \
            model. The request carries the worker's API token (the file given to `tandem-cloud serve \
            --api-token-file`); a refusal prints the worker's reason and exits 1.
            """)

    @Option(help: "The worker's HTTP address.") var url = "http://127.0.0.1:8080"
    @Option(help: "A file holding the worker's API token.") var tokenFile: String
    @Option(name: .customLong("class"), help: "A class name of the full model.") var className: String
    @Option(help: "The escalation id to label (a UUID).") var escalation: String?
    @Option(help: "The device whose escalations to label over a time range.") var device: String?
    @Option(help: "The device's stream.") var stream: String?
    @Option(help: "The fleet (default: the device id in every fleet).") var fleet: String?
    @Option(help: "The first window start labelled: seconds since 1970 or ISO 8601.") var start: String?
    @Option(help: "The last window start labelled: seconds since 1970 or ISO 8601.") var end: String?

    func validate() throws {
        let range = [device, stream, start, end]
        if escalation != nil {
            guard range.allSatisfy({ $0 == nil }) && fleet == nil else {
                throw ValidationError("give either --escalation or --device, --stream, --start and --end, not both")
            }
        } else if range.contains(where: { $0 == nil }) {
            throw ValidationError("give --escalation, or all of --device, --stream, --start and --end")
        }
    }

    func run() async throws {
        let body = try requestBody()
        let token: String
        do {
            token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
        } catch {
            throw CommandFailure("\(tokenFile): cannot read the API token: \(error.localizedDescription)")
        }
        guard let endpoint = URL(string: url.hasSuffix("/") ? url + "v1/labels" : url + "/v1/labels"),
            endpoint.scheme == "http" || endpoint.scheme == "https"
        else { throw CommandFailure("--url \(url): not an http:// or https:// address") }
        var request = URLRequest(url: endpoint)
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let reply = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard status == 200 else {
            let reason = reply["reason"] as? String ?? String(decoding: data.prefix(512), as: UTF8.self)
            throw CommandFailure("\(endpoint.absoluteString) refused the label (HTTP \(status)): \(reason)")
        }
        if let labelled = reply["labelled"] as? Int {
            print("labelled \(labelled) escalation(s) of \(device ?? "") \(stream ?? "") as \(className)")
        } else {
            print("stored \(reply["stored"] as? Int ?? 0) label(s) as \(className)")
        }
    }

    /// The JSON body, checked here as the worker checks it, so a typo fails before anything is sent.
    func requestBody() throws -> [UInt8] {
        if let escalation {
            guard let id = UUID(uuidString: escalation) else {
                throw ValidationError("--escalation \(escalation): not a UUID")
            }
            return GroundTruthLabel(escalationId: id, label: className).encoded()
        }
        do {
            return try TimeRangeLabel(
                fleet: fleet, device: device ?? "", stream: stream ?? "", start: try Self.time(start ?? "", "--start"),
                end: try Self.time(end ?? "", "--end"), label: className
            ).encoded()
        } catch let error as LabelError {
            throw ValidationError(error.message)
        }
    }

    /// Seconds since 1970 from a number or an ISO 8601 date and time.
    static func time(_ text: String, _ option: String) throws -> Double {
        if let seconds = Double(text), seconds.isFinite { return seconds }
        if let date = try? Date(text, strategy: .iso8601) { return date.timeIntervalSince1970 }
        throw ValidationError("\(option) \(text): not seconds since 1970 nor an ISO 8601 time (2026-12-07T10:40:00Z)")
    }
}
