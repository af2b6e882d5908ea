//! Frames carry pooled buffers across threads and give them back on drop.

use std::sync::mpsc;
use std::thread;

use reel_frame::{Frame, PixelFormat};
use reel_pool::FramePool;

#[test]
fn frames_dropped_on_other_threads_return_to_the_pool() {
    let (w, h) = (320, 240);
    let len = PixelFormat::Rgb24.frame_size(w, h).unwrap();
    // Room for exactly four frames: the producer must wait for the consumer.
    let class = reel_pool::size_class(len).unwrap();
    let pool = FramePool::with_budget(4 * class);
    let (tx, rx) = mpsc::sync_channel::<Frame>(16);
    let producer = {
        let pool = pool.clone();
        thread::spawn(move || {
            for i in 0..100u64 {
                let mut buf = pool.acquire(len).unwrap();
                buf.fill(i as u8);
                let frame = Frame::new(buf, PixelFormat::Rgb24, w, h, i, i as f64 / 25.0).unwrap();
                tx.send(frame).unwrap();
            }
        })
    };
    let mut seen = 0;
    for frame in rx {
        assert_eq!(frame.data()[0], frame.index as u8);
        seen += 1;
    }
    producer.join().unwrap();
    assert_eq!(seen, 100);
    let s = pool.stats();
    assert_eq!(s.bytes_in_use, 0);
    assert!(s.peak_bytes <= 4 * class);
    assert_eq!(s.misses + s.hits, 100);
}
