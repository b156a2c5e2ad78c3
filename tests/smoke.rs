use fgbi::{Config, Decoder, Encoder};

#[test]
fn smoke() {
    let cfg = Config::default();
    let mut enc = Encoder::new(cfg).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let n = 64;
    let mut mem: Vec<u8> = (0..n * 4096).map(|i| (i * 31 / 7) as u8).collect();
    let mut rep = vec![0u8; mem.len()];
    for e in 0..5u64 {
        enc.begin_epoch(e).unwrap();
        for p in 0..n {
            if e == 0 || p % (e as usize + 1) == 0 {
                enc.add_page((p * 4096) as u64, &mem[p * 4096..(p + 1) * 4096])
                    .unwrap();
            }
        }
        let f = enc.end_epoch().unwrap().to_vec();
        dec.apply_flat(&f, &mut rep).unwrap();
        assert_eq!(mem, rep, "epoch {e}");
        println!("epoch {e}: {} bytes {:?}", f.len(), enc.epoch_stats());
        for p in 0..n {
            if p % (e as usize + 2) == 0 {
                mem[p * 4096 + 100 + e as usize] ^= 0x55;
                let (a, b) = mem.split_at_mut(p * 4096);
                if p > 0 {
                    b[1024..1280].copy_from_slice(&a[..256]);
                }
            }
        }
    }
}
