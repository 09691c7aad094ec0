import CollectionsAPI
import CollectionsMock
import Foundation
import Testing

/// HTTP/1.1 on the wire: keep-alive, pipelining, `Connection: close`, one answer per request.
@Suite struct HTTPTests {
    /// A blocking TCP connection to the mock, for looking at raw bytes.
    final class RawConnection {
        let fd: Int32

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else { throw MockError("connect failed: \(errno)") }
        }

        deinit { close(fd) }

        func write(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        }

        /// Reads until `answers` complete answers (by Content-Length) arrived, or EOF / timeout.
        func read(answers: Int) -> (text: String, closed: Bool) {
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 65536)
            while Self.complete(data) < answers {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 { return (String(decoding: data, as: UTF8.self), count == 0) }
                data += buffer[..<count]
            }
            return (String(decoding: data, as: UTF8.self), false)
        }

        /// Whether the peer closed (EOF within the receive timeout).
        func isClosed() -> Bool {
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, 0) == 0
        }

        static func complete(_ data: [UInt8]) -> Int {
            let text = String(decoding: data, as: UTF8.self)
            var count = 0
            var rest = Substring(text)
            while let headEnd = rest.range(of: "\r\n\r\n") {
                let head = rest[..<headEnd.lowerBound].lowercased()
                guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                      let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { break }
                let body = rest[headEnd.upperBound...]
                guard body.utf8.count >= length else { break }
                count += 1
                rest = Substring(String(decoding: Array(body.utf8).dropFirst(length), as: UTF8.self))
            }
            return count
        }
    }

    func signedGet(_ h: Harness, query: String, close: Bool = false) -> String {
        let path = Endpoint.show.servedPath
        let header = OAuth1.authorize(
            method: "GET", baseURL: "http://127.0.0.1:\(h.port)\(path)", parameters: PercentEncoding.parseQuery(query[...]) ?? [],
            consumerKey: h.credentials.consumerKey, consumerSecret: h.credentials.consumerSecret,
            token: h.credentials.accessToken, tokenSecret: h.credentials.accessTokenSecret,
            nonce: Harness.nonce(), timestamp: Int64(h.server.now))
        return "GET \(path)?\(query) HTTP/1.1\r\nHost: 127.0.0.1:\(h.port)\r\nAuthorization: \(header)\r\n"
            + (close ? "Connection: close\r\n" : "") + "\r\n"
    }

    @Test func keepAliveAndPipelining() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let connection = try RawConnection(port: h.port)
            connection.write(signedGet(h, query: "id=\(id)"))
            let first = connection.read(answers: 1)
            #expect(first.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(!first.closed)
            #expect(!first.text.lowercased().contains("connection: close"))
            // Three pipelined requests on the same connection, three answers in order.
            connection.write(signedGet(h, query: "id=\(id)") + signedGet(h, query: "id=custom-9") + signedGet(h, query: "id=\(id)"))
            let three = connection.read(answers: 3)
            // Bodies are not followed by a line break: split on the status lines themselves.
            let statuses = three.text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { "HTTP/1.1 " + $0.prefix { $0 != "\r\n" } }
            #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"])
            #expect(h.server.journal().count == 4)
            // Connection: close is honoured.
            connection.write(signedGet(h, query: "id=\(id)", close: true))
            let last = connection.read(answers: 1)
            #expect(last.text.lowercased().contains("connection: close"))
            #expect(connection.isClosed())
        }
    }

    @Test func bodyLimitAndBadRequests() async throws {
        var configuration = MockConfiguration()
        configuration.maxBodyBytes = 1000
        try await withHarness(configuration) { h in
            let big = try await h.send("POST", Endpoint.curate.servedPath, json: Array(repeating: UInt8(ascii: " "), count: 5000))
            #expect(big.status == 413)
            let connection = try RawConnection(port: h.port)
            connection.write("NOT HTTP AT ALL\r\n\r\n")
            let answer = connection.read(answers: 1)
            #expect(answer.text.hasPrefix("HTTP/1.1 400"))
            #expect(try await h.get(.show, [("id", "custom-1")]).status == 404, "the server still answers")
        }
    }
}
