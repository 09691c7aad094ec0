/// One numbered SQL migration, embedded in the binary at build time.
public struct SchemaMigration: Sendable {
    /// The number in the file name; migrations run in increasing order.
    public let version: Int
    /// The file name, for messages and the `schema_migrations` table.
    public let name: String
    /// The SQL text, run as one script inside the migrating transaction.
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Every migration this build knows, in order. Append only.
public let schemaMigrations: [SchemaMigration] = [
    SchemaMigration(version: 1, name: "0001_init.sql", sql: String(decoding: PackageResources._001_init_sql, as: UTF8.self)),
    SchemaMigration(version: 2, name: "0002_counters.sql", sql: String(decoding: PackageResources._002_counters_sql, as: UTF8.self)),
    SchemaMigration(version: 3, name: "0003_counter_changes.sql",
                    sql: String(decoding: PackageResources._003_counter_changes_sql, as: UTF8.self)),
    SchemaMigration(version: 4, name: "0004_counters_of_their_own.sql",
                    sql: String(decoding: PackageResources._004_counters_of_their_own_sql, as: UTF8.self)),
    SchemaMigration(version: 5, name: "0005_collections_offline.sql",
                    sql: String(decoding: PackageResources._005_collections_offline_sql, as: UTF8.self)),
    SchemaMigration(version: 6, name: "0006_ops_checks_without_in_lists.sql",
                    sql: String(decoding: PackageResources._006_ops_checks_without_in_lists_sql, as: UTF8.self)),
]
