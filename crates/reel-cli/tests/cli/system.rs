use crate::reel;

#[test]
fn system_json_has_the_contract_keys() {
    let out = reel(&["system", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["cores"].as_u64().unwrap() >= 1);
    assert!(v["memory_bytes"].as_u64().unwrap() > 0);
    assert!(v["profile"].is_string());
    for level in ["conservative", "balanced", "aggressive"] {
        let l = &v["levels"][level];
        assert!(l["workers"].as_u64().unwrap() >= 1, "{level}");
        assert!(l["pool_budget_bytes"].as_u64().unwrap() > 0, "{level}");
        assert!(l["batch_size"].as_u64().unwrap() >= 1, "{level}");
    }
    assert!(v["gpus"].is_array());
    let hw = &v["hardware"];
    // ffmpeg is installed where the tests run, built with hardware methods and
    // encoders; each says whether a device backs it.
    assert!(hw["ffmpeg"].is_string(), "{hw}");
    for list in ["hwaccels", "decoders", "encoders"] {
        for item in hw[list].as_array().unwrap() {
            assert!(item["name"].is_string(), "{item}");
            assert!(item["available"].is_boolean(), "{item}");
        }
    }
    assert!(!hw["encoders"].as_array().unwrap().is_empty());
}

#[test]
fn system_human_output_names_the_profile() {
    let out = reel(&["system"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("profile:"), "{text}");
    assert!(text.contains("balanced"), "{text}");
    assert!(text.contains("hardware decoding:"), "{text}");
}
