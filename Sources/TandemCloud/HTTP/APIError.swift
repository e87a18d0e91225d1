import Foundation
import Hummingbird
import Logging

/// An HTTP API failure, sent as `{"error": "…", "reason": "…"}` with its status code.
public struct APIError: HTTPResponseError, CustomStringConvertible, Sendable {
    /// The status code.
    public var status: HTTPResponse.Status
    /// A short, stable description of the failure (`unauthorized`, `bad request`, …).
    public var error: String
    /// What was wrong, in words.
    public var reason: String
    /// Extra headers (`WWW-Authenticate` on 401).
    public var headers: HTTPFields

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, _ error: String, _ reason: String, headers: HTTPFields = [:]) {
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers
    }

    /// `status: reason`.
    public var description: String { "\(status.code) \(error): \(reason)" }

    /// The JSON response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONBody.response(["error": error, "reason": reason], status: status)
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// Turns every error a route throws into an ``APIError`` response: Hummingbird's own (`404` for an unknown
/// route, `413` for a body over the limit) keep their status, anything else is a logged 500.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as any HTTPResponseError {
            let reason =
                switch error.status {
                case .notFound: "no route \(request.method) \(request.uri.path)"
                case .contentTooLarge: "the request body is larger than this route accepts"
                default: "\(error)"
                }
            throw APIError(error.status, error.status.reasonPhrase.lowercased(), reason)
        } catch {
            logger.error("http: \(request.method) \(escaping: request.uri.path) failed: \(escaping: error)")
            throw APIError(.internalServerError, "internal error", "\(error)")
        }
    }
}

/// JSON response bodies.
package enum JSONBody {
    /// A response with `object` (JSONSerialization types) as its body, keys sorted.
    static func response(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return bytes(Array(data), status: status)
    }

    /// A response with an `Encodable` value as its body, keys sorted, dates in ISO 8601.
    static func response(encoding value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        bytes(try encoded(value), status: status)
    }

    /// The body ``response(encoding:status:)`` sends for `value`.
    package static func encoded(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return Array(try encoder.encode(value))
    }

    private static func bytes(_ bytes: [UInt8], status: HTTPResponse.Status) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
