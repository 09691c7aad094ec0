// The ids, endpoints and wall clock of the API are part of this library's own API.
@_exported import CollectionsAPI
