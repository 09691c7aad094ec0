import ArgumentParser
import CollectionsAPI
import CollectionSync
import SyncctlContract

/// Parses every value or throws one usage failure naming the first bad one; nothing is touched
/// before all input is valid.
func parseAll<T>(_ values: [String], _ parse: (String) throws -> T) throws -> [T] {
    do {
        return try values.map(parse)
    } catch let error as SyncError {
        throw Failure.usage(error.message)
    } catch let error as CollectionsAPIError {
        throw Failure.usage(error.message)
    }
}
