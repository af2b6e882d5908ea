//! Which share of a batch this worker takes: `K/N` from the command line or from
//! the scheduler's environment, and the deterministic split of the inputs.

use std::path::{Path, PathBuf};

use super::BatchError;

/// One worker's share of a batch: shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// This worker's shard, from 0.
    pub index: u32,
    /// How many shards the inputs are split into.
    pub count: u32,
}

impl Shard {
    /// The whole batch: shard 0 of 1.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`, refused when `index` is not below `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, BatchError> {
        if count == 0 || index >= count {
            return Err(BatchError::Shard(format!(
                "shard {index} of {count} does not exist: the index runs from 0 to the count less one"
            )));
        }
        Ok(Self { index, count })
    }

    /// Whether this is the whole batch.
    pub fn is_all(&self) -> bool {
        self.count == 1
    }

    /// The suffix of this shard's manifest and summary files (`` for the whole
    /// batch, `.shard-2-of-4` otherwise).
    pub fn suffix(&self) -> String {
        if self.is_all() {
            String::new()
        } else {
            format!(".shard-{}-of-{}", self.index, self.count)
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = BatchError;

    /// `K/N`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BatchError::Shard(format!("`{s}` is not a shard K/N (e.g. 0/4)"));
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n)
    }
}

/// Where the shard came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardSource {
    /// No sharding: the whole batch.
    None,
    /// `--shard K/N`.
    Flag,
    /// `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT` (a Slurm job array).
    Slurm,
    /// `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job).
    Kubernetes,
    /// `AWS_BATCH_JOB_ARRAY_INDEX` (an AWS Batch array job).
    AwsBatch,
}

/// The shard of this worker: `flag` when given, else the scheduler's environment
/// as `env` reads it (`std::env::var` in a real run): Slurm's task id (less
/// `SLURM_ARRAY_TASK_MIN`, so that `--array=1-4` counts from 0) and task count,
/// Kubernetes' `JOB_COMPLETION_INDEX`, AWS Batch's `AWS_BATCH_JOB_ARRAY_INDEX`.
/// `count` (`--shard-count`) gives the number of shards where the environment
/// gives only an index, and overrides Slurm's: then Slurm's task id is the shard
/// index as it is (a task of a four-task array resubmitted alone, `--array=2`,
/// sees a minimum of 2 and a count of 1).
pub fn resolve(
    flag: Option<Shard>,
    count: Option<u32>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Shard, ShardSource), BatchError> {
    if let Some(s) = flag {
        if let Some(n) = count
            && n != s.count
        {
            return Err(BatchError::Shard(format!(
                "--shard {s} and --shard-count {n} disagree"
            )));
        }
        return Ok((s, ShardSource::Flag));
    }
    let number = |name: &str| -> Result<Option<u32>, BatchError> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| BatchError::Shard(format!("{name}={v:?} is not a whole number"))),
        }
    };
    let need_count = |name: &str| {
        count.ok_or_else(|| {
            BatchError::Shard(format!(
                "{name} is set but not the number of shards: give --shard-count N"
            ))
        })
    };
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        // With the count given, the task id is the shard: a task resubmitted
        // alone (`--array=2`) sees a minimum of 2 and a count of 1.
        let min = match count {
            Some(_) => 0,
            None => number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0),
        };
        let n = match count {
            Some(n) => n,
            None => number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                BatchError::Shard(
                    "SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT: give --shard-count N"
                        .into(),
                )
            })?,
        };
        let index = id.checked_sub(min).ok_or_else(|| {
            BatchError::Shard(format!(
                "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
            ))
        })?;
        return Ok((Shard::new(index, n)?, ShardSource::Slurm));
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let n = need_count("JOB_COMPLETION_INDEX")?;
        return Ok((Shard::new(index, n)?, ShardSource::Kubernetes));
    }
    if let Some(index) = number("AWS_BATCH_JOB_ARRAY_INDEX")? {
        let n = need_count("AWS_BATCH_JOB_ARRAY_INDEX")?;
        return Ok((Shard::new(index, n)?, ShardSource::AwsBatch));
    }
    match count {
        Some(1) | None => Ok((Shard::ALL, ShardSource::None)),
        Some(n) => Err(BatchError::Shard(format!(
            "--shard-count {n} without an index: give --shard K/{n} or run under a scheduler"
        ))),
    }
}

/// How the inputs are split between shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardBy {
    /// A stable hash of the canonical path: an input's shard depends on its path
    /// alone, whatever the list's order or the other inputs.
    #[default]
    Hash,
    /// Balanced by file size: largest first, each to the shard with the fewest
    /// bytes so far (depends on the whole list, not on its order).
    Size,
}

impl std::str::FromStr for ShardBy {
    type Err = BatchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hash" => Ok(ShardBy::Hash),
            "size" => Ok(ShardBy::Size),
            _ => Err(BatchError::Shard(format!(
                "unknown split `{s}` (hash or size)"
            ))),
        }
    }
}

/// The shard `path` belongs to under [`ShardBy::Hash`].
pub fn shard_of(path: &Path, count: u32) -> u32 {
    let h = xxhash_rust::xxh3::xxh3_64(path.as_os_str().as_encoded_bytes());
    (h % u64::from(count.max(1))) as u32
}

/// The inputs of `shard` among `inputs` (sorted, without duplicates), with their
/// sizes in bytes for [`ShardBy::Size`] (a missing file counts as 0).
pub fn select(inputs: &[PathBuf], shard: Shard, by: ShardBy) -> Vec<PathBuf> {
    if shard.is_all() {
        return inputs.to_vec();
    }
    match by {
        ShardBy::Hash => inputs
            .iter()
            .filter(|p| shard_of(p, shard.count) == shard.index)
            .cloned()
            .collect(),
        ShardBy::Size => {
            let mut sized: Vec<(u64, &PathBuf)> = inputs
                .iter()
                .map(|p| (std::fs::metadata(p).map_or(0, |m| m.len()), p))
                .collect();
            // Largest first, ties by path: the same split whatever the order given.
            sized.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            let mut load = vec![0u64; shard.count as usize];
            let mut mine = Vec::new();
            for (size, path) in sized {
                let (least, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|&(i, l)| (*l, i))
                    .unwrap_or((0, &0));
                // Every input weighs at least one, so empty files spread too.
                load[least] += size.max(1);
                if least == shard.index as usize {
                    mine.push(path.clone());
                }
            }
            mine.sort();
            mine
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn shards_parse_and_refuse_what_does_not_exist() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard::ALL.suffix(), "");
        assert_eq!(Shard::new(2, 4).unwrap().suffix(), ".shard-2-of-4");
    }

    #[test]
    fn each_scheduler_environment_picks_the_shard() {
        let (s, from) = resolve(
            None,
            None,
            env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ]),
        )
        .unwrap();
        assert_eq!((s, from), (Shard::new(2, 4).unwrap(), ShardSource::Slurm));
        // --array=1-4 counts from its minimum.
        let (s, _) = resolve(
            None,
            None,
            env(&[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(s, Shard::new(3, 4).unwrap());
        // A task resubmitted alone (--array=2: minimum 2, count 1) keeps its shard
        // through --shard-count.
        let (s, _) = resolve(
            None,
            Some(4),
            env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_MIN", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(s, Shard::new(2, 4).unwrap());
        // Without the count it would be shard 0 of 1: the whole batch.
        let (s, _) = resolve(
            None,
            None,
            env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_MIN", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(s, Shard::ALL);
        let (s, from) = resolve(None, Some(3), env(&[("JOB_COMPLETION_INDEX", "1")])).unwrap();
        assert_eq!(
            (s, from),
            (Shard::new(1, 3).unwrap(), ShardSource::Kubernetes)
        );
        assert!(resolve(None, None, env(&[("JOB_COMPLETION_INDEX", "1")])).is_err());
        let (s, from) = resolve(None, Some(2), env(&[("AWS_BATCH_JOB_ARRAY_INDEX", "0")])).unwrap();
        assert_eq!(
            (s, from),
            (Shard::new(0, 2).unwrap(), ShardSource::AwsBatch)
        );
        // The flag wins over the environment.
        let (s, from) = resolve(
            Some(Shard::new(0, 2).unwrap()),
            None,
            env(&[("JOB_COMPLETION_INDEX", "1")]),
        )
        .unwrap();
        assert_eq!((s, from), (Shard::new(0, 2).unwrap(), ShardSource::Flag));
        assert_eq!(
            resolve(None, None, env(&[])).unwrap(),
            (Shard::ALL, ShardSource::None)
        );
        assert!(resolve(None, Some(3), env(&[])).is_err());
        assert!(resolve(None, Some(2), env(&[("JOB_COMPLETION_INDEX", "2")])).is_err());
    }

    #[test]
    fn shards_cover_every_input_once_whatever_the_order() {
        let inputs: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/v/{i}.mp4")))
            .collect();
        for by in [ShardBy::Hash, ShardBy::Size] {
            let mut seen = Vec::new();
            for k in 0..5 {
                let mine = select(&inputs, Shard::new(k, 5).unwrap(), by);
                if by == ShardBy::Hash {
                    assert!(!mine.is_empty());
                }
                seen.extend(mine);
            }
            seen.sort();
            let mut all = inputs.clone();
            all.sort();
            assert_eq!(seen, all, "{by:?}");
        }
        // Hash: an input's shard is its own; more inputs do not move it.
        let fewer = &inputs[..50];
        let a = select(fewer, Shard::new(1, 5).unwrap(), ShardBy::Hash);
        let b = select(&inputs, Shard::new(1, 5).unwrap(), ShardBy::Hash);
        assert!(a.iter().all(|p| b.contains(p)));
    }
}
