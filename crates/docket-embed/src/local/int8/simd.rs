//! The AVX-512 VNNI and AMX micro-kernels: the only `unsafe` in docket. It calls
//! `#[target_feature]` functions once the CPU has been checked for those features, asks Linux
//! for the AMX tile registers, and runs the tile instructions (inline assembly; Rust has no
//! stable AMX intrinsics) on bounds checked just before.

use super::{MR, NR, QLinear, Scratch, portable_kernel};

/// Input bytes per AMX tile row: kernels on AMX need `kp` a multiple of this.
pub(super) const AMX_K: usize = 64;
/// Rows per AMX micro-kernel call (a tile's rows).
pub(super) const AMX_MR: usize = 16;

/// Whether this CPU runs the VNNI kernel natively.
pub(super) fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this process may run the AMX kernel: the CPU has AMX-TILE and AMX-INT8 (and
/// the AVX-512 of [`vnni_available`], for the loops around the kernel), and Linux granted
/// this process the tile registers. Asked once; the grant holds for every thread.
pub(super) fn amx_available() -> bool {
    static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GRANTED.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
            // CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
            let cpu = __get_cpuid_max(0).0 >= 7 && {
                let edx = __cpuid_count(7, 0).edx;
                edx & (1 << 24) != 0 && edx & (1 << 25) != 0
            };
            cpu && vnni_available() && x86::request_tiles()
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            false
        }
    })
}

/// [`super::task`] compiled for AVX-512 with the VNNI micro-kernel where the CPU has it,
/// else with the portable loops.
pub(super) fn task_vnni(lin: &QLinear, a: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    if vnni_available() {
        // SAFETY: the CPU has every feature `task_avx512` is compiled for (checked just
        // above; the check is a cached load after the first call).
        unsafe { x86::task_avx512(lin, a, out, scratch) };
        return;
    }
    super::task(lin, a, out, scratch, portable_kernel::<MR>);
}

/// [`super::task`] on the AMX micro-kernel where this process may use it (and `kp` is a
/// multiple of [`AMX_K`]), else [`task_vnni`].
pub(super) fn task_amx(lin: &QLinear, a: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if lin.kp.is_multiple_of(AMX_K) && amx_available() {
        // SAFETY: the CPU has AMX and every feature `task_amx` is compiled for, and Linux
        // granted this process the tile registers (all checked just above, once).
        unsafe { x86::task_amx(lin, a, out, scratch) };
        return;
    }
    task_vnni(lin, a, out, scratch)
}

/// `acc[r][j] = Σ_g Σ_t qa[r][4g+t] · panel[g][j][t]` for [`MR`] rows (`kp` bytes each)
/// and the [`NR`] columns of one panel, on VNNI.
#[cfg(test)]
pub(super) fn kernel_vnni(qa: &[u8], kp: usize, panel: &[i8], acc: &mut [[i32; NR]; MR]) {
    assert!(qa.len() >= MR * kp && panel.len() >= kp / 4 * NR * 4);
    #[cfg(target_arch = "x86_64")]
    if vnni_available() {
        // SAFETY: the CPU has every feature `kernel_avx512` is compiled for (checked
        // just above; the check is a cached load after the first call).
        unsafe { x86::kernel_avx512(qa, kp, panel, acc) };
        return;
    }
    portable_kernel(qa, kp, panel, acc);
}

/// The same products for [`AMX_MR`] rows on AMX; `None` where AMX is not usable.
#[cfg(test)]
pub(super) fn kernel_amx(
    qa: &[u8],
    kp: usize,
    panel: &[i8],
    acc: &mut [[i32; NR]; AMX_MR],
) -> Option<()> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if kp.is_multiple_of(AMX_K) && amx_available() {
        let _tiles = x86::Tiles::configure();
        x86::kernel_amx(qa, kp, panel, acc);
        return Some(());
    }
    let _ = (qa, kp, panel, acc);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{__m512i, _mm512_dpbusd_epi32, _mm512_set1_epi32};

    use super::{AMX_K, AMX_MR, MR, NR, QLinear, Scratch};

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn task_avx512(lin: &QLinear, a: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        super::super::task(lin, a, out, scratch, |qa, kp, panel, acc| {
            kernel_avx512(qa, kp, panel, acc)
        });
    }

    /// 16 lanes of i32 from 64 bytes, without a pointer.
    #[inline(always)]
    fn load(b: &[i8]) -> __m512i {
        let arr: [i8; 64] = b[..64].try_into().expect("64 bytes");
        bytemuck::cast(arr)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn kernel_avx512(qa: &[u8], kp: usize, panel: &[i8], acc: &mut [[i32; NR]; MR]) {
        const { assert!(NR == 48 && MR == 8) };
        let zero: __m512i = bytemuck::cast([0i32; 16]);
        let mut c = [[zero; 3]; MR];
        let rows: [&[u8]; MR] = std::array::from_fn(|r| &qa[r * kp..(r + 1) * kp]);
        for (g, b) in panel[..kp / 4 * NR * 4].chunks_exact(NR * 4).enumerate() {
            let b0 = load(&b[0..64]);
            let b1 = load(&b[64..128]);
            let b2 = load(&b[128..192]);
            for r in 0..MR {
                let a = &rows[r][g * 4..g * 4 + 4];
                let a = _mm512_set1_epi32(i32::from_le_bytes([a[0], a[1], a[2], a[3]]));
                c[r][0] = _mm512_dpbusd_epi32(c[r][0], a, b0);
                c[r][1] = _mm512_dpbusd_epi32(c[r][1], a, b1);
                c[r][2] = _mm512_dpbusd_epi32(c[r][2], a, b2);
            }
        }
        for (out, c) in acc.iter_mut().zip(&c) {
            let v: [[i32; 16]; 3] = bytemuck::cast(*c);
            out[..16].copy_from_slice(&v[0]);
            out[16..32].copy_from_slice(&v[1]);
            out[32..].copy_from_slice(&v[2]);
        }
    }

    /// Asks Linux for the AMX tile data state (`ARCH_REQ_XCOMP_PERM`, Linux 5.16 on);
    /// without the grant a tile instruction kills the process.
    #[cfg(target_os = "linux")]
    pub(super) fn request_tiles() -> bool {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with ARCH_REQ_XCOMP_PERM takes two integers and touches no
        // memory of ours; it fails (non-zero) where the CPU or kernel lacks the feature.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }

    /// The tile shapes, as `ldtilecfg` reads them: palette 1; tiles 0–2 the 16 × 16 i32
    /// sums, tile 4 the 16 rows × 64 bytes of activations, tiles 5–7 the weights (16
    /// groups of four inputs × 16 columns × 4 bytes). Every used tile is 16 rows of 64
    /// bytes.
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const CONFIG: TileConfig = {
        let mut c = [0u8; 64];
        c[0] = 1; // palette
        let mut t = 0;
        while t < 8 {
            if t != 3 {
                c[16 + 2 * t] = AMX_K as u8; // bytes per row (u16, little-endian)
                c[48 + t] = AMX_MR as u8; // rows
            }
            t += 1;
        }
        TileConfig(c)
    };

    /// The tiles configured for [`kernel_amx`] on this thread until dropped (then
    /// released, so the thread's tile state is small again for context switches).
    pub(super) struct Tiles(());

    impl Tiles {
        pub(super) fn configure() -> Tiles {
            // SAFETY: only reached once `amx_available` (the grant included) held; CONFIG
            // is a valid palette-1 configuration of 64 aligned bytes.
            unsafe {
                std::arch::asm!(
                    "ldtilecfg [{0}]",
                    in(reg) CONFIG.0.as_ptr(),
                    options(nostack, readonly, preserves_flags)
                )
            };
            Tiles(())
        }
    }

    impl Drop for Tiles {
        fn drop(&mut self) {
            // SAFETY: as in `configure`; tilerelease only resets the tile state.
            unsafe { std::arch::asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
        }
    }

    /// [`super::super::task`] on [`kernel_amx`], with the loops around it compiled for
    /// AVX-512.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn task_amx(lin: &QLinear, a: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        let _tiles = Tiles::configure();
        super::super::task(lin, a, out, scratch, kernel_amx);
    }

    /// `acc[r][j] = Σ_k qa[r][k] · panel[k/4][j][k%4]` for [`AMX_MR`] rows of `kp` bytes (a
    /// multiple of [`AMX_K`]) and the [`NR`] columns of one panel, as three 16-column tiles
    /// of sums: for each 64 bytes of input, one activation tile times three weight tiles.
    /// The weight panel's layout is already a tile's: row `g` of a weight tile is group
    /// `g`'s four bytes for 16 columns, the next row 192 bytes on. Needs [`Tiles`].
    pub(super) fn kernel_amx(qa: &[u8], kp: usize, panel: &[i8], acc: &mut [[i32; NR]; AMX_MR]) {
        const { assert!(NR == 48 && AMX_MR == 16 && AMX_K == 64) };
        // Every tile access below stays inside these slices: activation rows r·kp + 64·t
        // .. + 64 for r < 16 and 64·t + 64 ≤ kp; weight rows (16·t + g)·192 + 64·c .. + 64
        // for g < 16, c < 3, that is below kp / 4 · 192; sums r·192 + 64·c .. + 64.
        assert!(kp.is_multiple_of(AMX_K));
        assert!(qa.len() >= AMX_MR * kp && panel.len() >= kp / 4 * NR * 4);
        let stride_b = NR * 4;
        // SAFETY: the tiles were configured by the caller's `Tiles`; this touches no memory.
        unsafe {
            std::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                options(nostack, nomem, preserves_flags)
            );
        }
        for t in 0..kp / AMX_K {
            let a = qa[t * AMX_K..].as_ptr();
            let b = panel[t * 16 * stride_b..].as_ptr();
            // SAFETY: the reads are within `qa` and `panel` (asserted above); the tiles
            // were configured by the caller's `Tiles`.
            unsafe {
                std::arch::asm!(
                    "tileloadd tmm4, [{a} + {sa} * 1]",
                    "tileloadd tmm5, [{b} + {sb} * 1]",
                    "tileloadd tmm6, [{b} + {sb} * 1 + 64]",
                    "tileloadd tmm7, [{b} + {sb} * 1 + 128]",
                    "tdpbusd tmm0, tmm4, tmm5",
                    "tdpbusd tmm1, tmm4, tmm6",
                    "tdpbusd tmm2, tmm4, tmm7",
                    a = in(reg) a,
                    sa = in(reg) kp,
                    b = in(reg) b,
                    sb = in(reg) stride_b,
                    options(nostack, readonly, preserves_flags)
                );
            }
        }
        let c = acc.as_mut_ptr().cast::<u8>();
        // SAFETY: 16 rows of 64 bytes at a stride of 192 bytes (one row of `acc`), at
        // offsets 0, 64 and 128: inside `acc`, which is 16 × 192 bytes.
        unsafe {
            std::arch::asm!(
                "tilestored [{c} + {s} * 1], tmm0",
                "tilestored [{c} + {s} * 1 + 64], tmm1",
                "tilestored [{c} + {s} * 1 + 128], tmm2",
                c = in(reg) c,
                s = in(reg) stride_b,
                options(nostack, preserves_flags)
            );
        }
    }
}
