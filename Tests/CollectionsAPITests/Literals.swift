import CollectionsAPI

// Ids written as literals in these tests; a literal that does not validate stops the test.
extension CollectionID: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { try! self.init(validating: value) }
}

extension TweetID: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { try! self.init(validating: value) }
}
