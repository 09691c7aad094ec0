/// The ten endpoints of the Collections API (api.md), named by their path below the API base
/// without `.json`. The client, the engine and the mock name endpoints only through this type.
public enum Endpoint: String, Sendable, Hashable, CaseIterable, Codable {
    /// `GET collections/entries.json`
    case entries = "collections/entries"
    /// `GET collections/show.json`
    case show = "collections/show"
    /// `GET collections/list.json`
    case list = "collections/list"
    /// `POST collections/create.json`
    case create = "collections/create"
    /// `POST collections/update.json`
    case update = "collections/update"
    /// `POST collections/destroy.json`
    case destroy = "collections/destroy"
    /// `POST collections/entries/add.json`
    case add = "collections/entries/add"
    /// `POST collections/entries/remove.json`
    case remove = "collections/entries/remove"
    /// `POST collections/entries/move.json`
    case move = "collections/entries/move"
    /// `POST collections/entries/curate.json`
    case curate = "collections/entries/curate"

    /// The HTTP method the endpoint takes.
    public var method: String {
        switch self {
        case .entries, .show, .list: "GET"
        default: "POST"
        }
    }

    /// Whether the endpoint can change state.
    public var isWrite: Bool { method == "POST" }

    /// The path below the API base, e.g. `collections/entries/curate.json`.
    public var path: String { rawValue + ".json" }
}
