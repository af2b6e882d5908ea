use reel_host::cache::{Cache, FileIdentity, PrunePolicy};

use crate::{DAY, ManualClock, lines, make_file, summary};

#[test]
fn entries_unused_past_the_age_limit_go() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let cache = Cache::open_with_clock(dir.path().join("cache"), clock.clone()).unwrap();
    let ids: Vec<FileIdentity> = (0..3)
        .map(|k| FileIdentity::of(make_file(dir.path(), &format!("{k}.mp4"), 1000, k)).unwrap())
        .collect();
    // a at day 0, b at day 1, c at day 20; a is read again at day 25.
    cache
        .put(&ids[0], "o", &summary("a", 1), lines("a", 1))
        .unwrap();
    clock.advance(DAY);
    cache
        .put(&ids[1], "o", &summary("b", 1), lines("b", 1))
        .unwrap();
    clock.advance(19 * DAY);
    cache
        .put(&ids[2], "o", &summary("c", 1), lines("c", 1))
        .unwrap();
    clock.advance(5 * DAY);
    assert!(cache.get(&ids[0], "o").unwrap().is_some());

    // Day 32: only b (last used on day 1) is older than 30 days.
    clock.advance(7 * DAY);
    let report = cache.prune(PrunePolicy::default()).unwrap();
    assert_eq!(report.removed_by_age, 1);
    assert_eq!(report.removed_by_size, 0);
    assert_eq!(report.remaining_entries, 2);
    assert!(cache.get(&ids[1], "o").unwrap().is_none());
    assert!(cache.get(&ids[0], "o").unwrap().is_some());
    assert!(cache.get(&ids[2], "o").unwrap().is_some());

    // A shorter limit on demand.
    clock.advance(2 * DAY);
    let report = cache
        .prune(PrunePolicy {
            max_age: DAY,
            ..PrunePolicy::default()
        })
        .unwrap();
    // Both were just read by the `get`s above, two days ago.
    assert_eq!(report.removed_by_age, 2);
    assert_eq!(cache.stats().unwrap().entries, 0);
}

#[test]
fn over_the_size_budget_the_least_recently_used_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let cache = Cache::open_with_clock(dir.path().join("cache"), clock.clone()).unwrap();
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    for k in 0..5u8 {
        let id = FileIdentity::of(make_file(dir.path(), &format!("{k}.mp4"), 1000, k)).unwrap();
        let out = cache
            .put(
                &id,
                "o",
                &summary(&k.to_string(), 400),
                lines(&k.to_string(), 400),
            )
            .unwrap();
        sizes.push(out.stored_bytes);
        ids.push(id);
        clock.advance(std::time::Duration::from_secs(60));
    }
    // Entry 0 is read last, so 1 and 2 are now the least recently used.
    assert!(cache.get(&ids[0], "o").unwrap().is_some());
    let total: u64 = sizes.iter().sum();
    assert_eq!(cache.stats().unwrap().stored_bytes, total);

    let budget = sizes[0] + sizes[3] + sizes[4];
    let report = cache
        .prune(PrunePolicy {
            max_bytes: budget,
            ..PrunePolicy::default()
        })
        .unwrap();
    assert_eq!(report.removed_by_size, 2);
    assert_eq!(report.removed_bytes, sizes[1] + sizes[2]);
    assert_eq!(report.remaining_bytes, budget);
    let kept: Vec<bool> = ids
        .iter()
        .map(|id| cache.get(id, "o").unwrap().is_some())
        .collect();
    assert_eq!(kept, [true, false, false, true, true]);
}

#[test]
fn every_commit_keeps_the_cache_within_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let policy = PrunePolicy {
        max_bytes: 40_000,
        max_age: 10 * DAY,
    };
    let cache = Cache::open_with_clock(dir.path().join("cache"), clock.clone())
        .unwrap()
        .with_policy(policy);
    let video = make_file(dir.path(), "v.mp4", 1000, 0);
    let id = FileIdentity::of(&video).unwrap();
    let mut evicted = 0;
    for k in 0..30 {
        let frames: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    "{{\"frame\":{i},\"k\":{k},\"x\":{}}}",
                    (i * 7919 + k * 104_729) % 1_000_003
                )
            })
            .collect();
        let out = cache
            .put(&id, &format!("k={k}"), &summary("x", 300), &frames)
            .unwrap();
        assert!(out.stored);
        evicted += out.pruned.removed_entries();
        let stats = cache.stats().unwrap();
        assert!(stats.stored_bytes <= policy.max_bytes, "{stats:?}");
        // The entry just written is always kept.
        assert!(cache.get(&id, &format!("k={k}")).unwrap().is_some());
        clock.advance(DAY / 4);
    }
    assert!(evicted > 0);

    // Eleven days without use: the next commit ages everything else out.
    clock.advance(11 * DAY);
    let out = cache.put(&id, "last", "{}", ["{}"]).unwrap();
    assert!(out.pruned.removed_by_age > 0);
    assert_eq!(cache.stats().unwrap().entries, 1);
}
