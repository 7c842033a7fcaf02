import Testing

@testable import AuditShipper

/// The slice sizing, with numbers alone: no server, no cycle.
@Suite struct SlicePlannerTests {
    let now: Int64 = 1_000_000

    @Test func aSliceIsBoundedWhileItEndsInThePastAndOpenAfter() {
        var planner = SlicePlanner(width: 3600)
        #expect(planner.end(from: now - 7200, now: now, until: nil) == now - 3600)
        // Reaching now or past it: open-ended, so nothing stamped after the local clock is skipped.
        #expect(planner.end(from: now - 3600, now: now, until: nil) == nil)
        #expect(planner.end(from: now - 10, now: now, until: nil) == nil)
        // A replay ends at `until`, never open.
        #expect(planner.end(from: now - 7200, now: now, until: now - 5000) == now - 5000)
        #expect(planner.end(from: now - 100, now: now, until: now) == now)
    }

    @Test func slicesThatHoldLittleGrowUpToFourfoldAndNoFurtherThanTheLimit() {
        var planner = SlicePlanner(width: 100)
        planner.walked(kept: 0, bound: 1000)
        #expect(planner.width == 1600, "empty, and nothing found yet this cycle: sixteenfold")
        planner.walked(kept: 0, bound: 1000)
        #expect(planner.width == 25_600)
        planner = SlicePlanner(width: 100)
        planner.walked(kept: 10, bound: 1000)
        #expect(planner.width == 400, "a hundredth of the bound: fourfold")
        planner.walked(kept: 0, bound: 1000)
        #expect(planner.width == 1600, "empty after data this cycle: fourfold")
        planner.beginCycle()
        planner.walked(kept: 0, bound: 1000)
        #expect(planner.width == 1600 * 16, "a new cycle found nothing yet")
        planner = SlicePlanner(width: 100)
        _ = planner.overflowed(from: now - 86_400, width: 100, dataFrom: nil, denseFrom: nil, fitsBefore: nil)
        planner.walked(kept: 0, bound: 1000)
        #expect(planner.width == 400, "empty after an overflow saw data: fourfold")
        planner.walked(kept: 100, bound: 1000)
        #expect(planner.width == 1600, "a tenth of the bound: fourfold (to aim at half)")
        planner.walked(kept: 200, bound: 1000)
        #expect(planner.width == 1600 * 2, "a fifth: twofold, to aim at half")
        planner.walked(kept: 250, bound: 1000)
        #expect(planner.width == 3200, "a quarter or more: unchanged")
        planner.walked(kept: 900, bound: 1000)
        #expect(planner.width == 3200, "near the bound: unchanged (an overflow narrows it)")
        var wide = SlicePlanner(width: SlicePlanner.maxWidth / 2)
        wide.walked(kept: 0, bound: 1000)
        #expect(wide.width == SlicePlanner.maxWidth)
    }

    @Test func anOverflowSetsTheWidthAndTheEndWhereASliceFits() {
        var planner = SlicePlanner(width: 86_400)
        let start = now - 30 * 86_400
        // Listed oldest first: half the bound was held before start + 500; dense data begins
        // at start + 2000.
        #expect(
            planner.overflowed(from: start, width: 700, dataFrom: nil, denseFrom: start + 2000, fitsBefore: start + 500)
                == nil)
        #expect(planner.width == 700)
        #expect(planner.end(from: start, now: now, until: nil) == start + 500, "the fitted end, once")
        #expect(planner.end(from: start + 500, now: now, until: nil) == start + 1200, "then the width")
        // Slices that hold little grow, but stop one dense width past where dense data begins.
        planner.walked(kept: 0, bound: 1000)
        #expect(planner.end(from: start + 1200, now: now, until: nil) == start + 2700)
        // Past where it began, the width alone.
        #expect(planner.end(from: start + 2700, now: now, until: nil) == start + 2700 + 2800)
    }

    @Test func dataSeenFarAboveBarrenGroundIsProbedForItsEdge() {
        var planner = SlicePlanner(width: 86_400)
        let start = now - 3650 * 86_400
        // Nothing found so far, the data far above: probe below it.
        #expect(
            planner.overflowed(from: start, width: 3600, dataFrom: now - 86_400, denseFrom: nil, fitsBefore: nil)
                == now - 86_400)
        // Close above the start: no probe, the slices get there.
        #expect(
            planner.overflowed(from: start, width: 3600, dataFrom: start + 4 * 3600, denseFrom: nil, fitsBefore: nil)
                == nil)
        // Once a slice found something, the ground is not barren: no probe.
        planner.walked(kept: 5, bound: 1000)
        #expect(
            planner.overflowed(from: start, width: 3600, dataFrom: now - 86_400, denseFrom: nil, fitsBefore: nil) == nil
        )
        // A new cycle forgets where data lay; the width stays.
        planner.beginCycle()
        #expect(planner.width == 3600)
        #expect(
            planner.overflowed(from: start, width: 3600, dataFrom: now - 86_400, denseFrom: nil, fitsBefore: nil)
                == now - 86_400)
    }
}
