extension StringProtocol {
    /// Without leading and trailing whitespace (spaces, tabs, line breaks): header values
    /// (where only spaces and tabs can occur), environment variables and file contents all
    /// go through this one trim.
    public var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
