//! The model manager: one load per model, shared; idle models evicted under
//! memory pressure, held ones never.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reel_infer::{HubOptions, InferError, ModelManager, ModelRequest, ModelSource};
use reel_pool::MemoryMonitor;
use reel_pool::monitor::{MemoryProbe, MemorySample, MonitorConfig};

use crate::weights_path;

const GIB: u64 = 1 << 30;

/// A machine of 10 GiB whose memory in use the test sets.
struct Scripted(Arc<AtomicU64>);

impl MemoryProbe for Scripted {
    fn sample(&mut self) -> MemorySample {
        let used = self.0.load(Ordering::SeqCst);
        MemorySample {
            total_bytes: 10 * GIB,
            available_bytes: 10 * GIB - used,
            process_rss_bytes: 0,
        }
    }
}

#[test]
fn a_model_is_loaded_once_and_shared() {
    let m = ModelManager::new(None, HubOptions::from_env());
    let req = ModelRequest::cpu(ModelSource::Path(weights_path()));
    let a = m.get(&req).unwrap();
    let b = m.get(&req).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let s = m.stats();
    assert_eq!((s.loads, s.hits, s.resident), (1, 1, 1));
    assert_eq!(a.labels.len(), 80);
    assert_eq!(a.labels[0].as_str(), "person");
    assert_eq!(a.device, "cpu");
}

#[test]
fn under_pressure_the_least_recently_used_idle_model_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb, pc) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
        dir.path().join("c.safetensors"),
    );
    for p in [&pa, &pb, &pc] {
        std::fs::copy(weights_path(), p).unwrap();
    }
    let used = Arc::new(AtomicU64::new(GIB));
    let monitor = MemoryMonitor::manual_with_probe(
        MonitorConfig::default(),
        Box::new(Scripted(Arc::clone(&used))),
    );
    let m = ModelManager::new(Some(Arc::new(monitor)), HubOptions::from_env());
    let req = |p: &std::path::Path| ModelRequest::cpu(ModelSource::Path(p.to_path_buf()));
    let a = m.get(&req(&pa)).unwrap();
    let b = m.get(&req(&pb)).unwrap();
    // Memory is tight now: 1 MiB short of the warning level (80 %).
    used.store(8 * GIB - (1 << 20), Ordering::SeqCst);
    // Both models are held: nothing can go, the load is refused with the reason.
    let e = m.get(&req(&pc)).unwrap_err();
    assert!(matches!(e, InferError::NoMemory { .. }), "{e}");
    assert!(e.is_out_of_memory());
    // Release both; `a` was used last, so `b` goes first.
    drop(b);
    let a_again = m.get(&req(&pa)).unwrap();
    assert!(Arc::ptr_eq(&a, &a_again));
    drop((a, a_again));
    let c = m.get(&req(&pc)).unwrap();
    let s = m.stats();
    assert_eq!(s.evictions, 1, "{s:?}");
    assert_eq!(s.resident, 2);
    // `a` is still there (a hit), `b` was evicted (a fresh load).
    let loads = s.loads;
    let _a = m.get(&req(&pa)).unwrap();
    assert_eq!(m.stats().loads, loads);
    drop(c);
}
