extension Int {
    /// `self + other`, held at `Int.max` (or `Int.min`) instead of trapping: for sums of counts that devices report,
    /// which no status may turn into a crash however many are added up.
    func addingSaturated(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
