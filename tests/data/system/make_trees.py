"""Writes the captured trees of tests/data/system (see README.md there): the files of /sys,
/proc and /boot that orch's system collector reads, of two bare-metal hosts, in the
kernel's own formats. Run it from anywhere to rebuild them: `python make_trees.py`."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU = "sys/devices/system/cpu"


class Tree:
    """Writes files under one tree's root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def link(self, rel: str, target: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    def gzip(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as file:
            file.write(text.encode())


def cpu_list(cpus: list[int]) -> str:
    """The kernel's cpulist format."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def cpu_mask(cpus: list[int], possible: int) -> str:
    """The kernel's hex cpumask format, as wide as the possible CPUs (32-bit groups)."""
    value = sum(1 << cpu for cpu in cpus)
    digits = max(1, (possible + 3) // 4)
    text = f"{value:0{digits}x}"
    groups = [text[max(0, end - 8) : end] for end in range(len(text), 0, -8)]
    return ",".join(reversed(groups))


def interrupts(cpus: int, lines: list[tuple[int, list[int], str, str]], width: int = 3) -> str:
    """/proc/interrupts as show_interrupts() prints it: `%*d: `, `%10u ` per CPU, the
    chip, the hardware IRQ and type, the name."""
    out = " " * (width + 8) + "".join(f"CPU{cpu:<8d}" for cpu in range(cpus)) + "\n"
    for irq, counts, chip, name in lines:
        out += f"{irq:>{width}}: " + "".join(f"{count:10d} " for count in counts)
        out += f" {chip}  {name}\n"
    return out


def proc_stat(cpus: list[tuple[int, ...]]) -> str:
    """/proc/stat's cpu lines (user nice system idle iowait irq softirq steal guest
    guest_nice, in USER_HZ ticks) and a few of the lines after them."""
    total = [sum(column) for column in zip(*cpus, strict=True)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{index} " + " ".join(map(str, row)) for index, row in enumerate(cpus)]
    lines += [
        "intr 1234567890 0 9 0 0",
        "ctxt 987654321",
        "btime 1735689600",
        "processes 123456",
        "procs_running 1",
        "procs_blocked 0",
        "softirq 456789 0 12345 6789 23456 3456 0 789 34567 0 45678",
    ]
    return "\n".join(lines) + "\n"


def write_cpuidle_state(tree: Tree, cpu: int, index: int, state: tuple[str, str, int, int]) -> None:
    name, _, latency, _ = state  # desc and residency: not read
    base = f"{CPU}/cpu{cpu}/cpuidle/state{index}"
    tree.write(f"{base}/name", f"{name}\n")
    tree.write(f"{base}/latency", f"{latency}\n")


INTEL_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts "
    "acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art "
    "arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc cpuid aperfmperf pni "
    "pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid "
    "sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm "
    "abm 3dnowprefetch cpuid_fault epb invpcid_single pti ssbd ibrs ibpb stibp tpr_shadow "
    "flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid "
    "rtm mpx rdseed adx smap clflushopt intel_pt xsaveopt xsavec xgetbv1 xsaves dtherm ida "
    "arat pln pts hwp hwp_notify hwp_act_window hwp_epp md_clear flush_l1d arch_capabilities"
)
# intel_idle's skl_cstates (drivers/idle/intel_idle.c): name, MWAIT hint, exit latency,
# target residency; POLL is the cpuidle core's own state 0.
SKL_STATES = [
    ("POLL", "CPUIDLE CORE POLL IDLE", 0, 0),
    ("C1", "MWAIT 0x00", 2, 2),
    ("C1E", "MWAIT 0x01", 10, 20),
    ("C3", "MWAIT 0x10", 70, 100),
    ("C6", "MWAIT 0x20", 85, 200),
    ("C7s", "MWAIT 0x33", 124, 800),
    ("C8", "MWAIT 0x40", 200, 800),
]


def intel(tree: Tree) -> None:
    """A Supermicro X11SSH-F with a Xeon E3-1230 v6 (Kaby Lake, 4 cores, SMT: CPU n and
    n+4 share a core), Debian 12's 6.1 kernel, intel_pstate (HWP) with the powersave
    governor, turbo on, intel_idle, irqbalance running, an Intel I210 (igb) as eno1."""
    model = "Intel(R) Xeon(R) CPU E3-1230 v6 @ 3.50GHz"
    cpuinfo = ""
    for cpu in range(8):
        cpuinfo += (
            f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 158\n"
            f"model name\t: {model}\nstepping\t: 9\nmicrocode\t: 0xf8\ncpu MHz\t\t: 800.081\n"
            f"cache size\t: 8192 KB\nphysical id\t: 0\nsiblings\t: 8\ncore id\t\t: {cpu % 4}\n"
            f"cpu cores\t: 4\napicid\t\t: {2 * (cpu % 4) + cpu // 4}\ninitial apicid\t: "
            f"{2 * (cpu % 4) + cpu // 4}\nfpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 22\n"
            f"wp\t\t: yes\nflags\t\t: {INTEL_FLAGS}\nbugs\t\t: cpu_meltdown spectre_v1 "
            "spectre_v2 spec_store_bypass l1tf mds swapgs taa itlb_multihit srbds mmio_stale_data "
            "retbleed gds\nbogomips\t: 7008.00\nclflush size\t: 64\ncache_alignment\t: 64\n"
            "address sizes\t: 39 bits physical, 48 bits virtual\npower management:\n\n"
        )
    tree.write("proc/cpuinfo", cpuinfo)
    for name, value in (("online", "0-7"), ("possible", "0-7"), ("present", "0-7")):
        tree.write(f"{CPU}/{name}", f"{value}\n")
    tree.write(f"{CPU}/offline", "\n")
    tree.write(f"{CPU}/isolated", "\n")
    tree.write(f"{CPU}/smt/control", "on\n")
    tree.write(f"{CPU}/smt/active", "1\n")
    tree.write(f"{CPU}/intel_pstate/status", "active\n")
    tree.write(f"{CPU}/intel_pstate/no_turbo", "0\n")
    tree.write(f"{CPU}/intel_pstate/max_perf_pct", "100\n")
    tree.write(f"{CPU}/intel_pstate/min_perf_pct", "22\n")
    tree.write(f"{CPU}/intel_pstate/turbo_pct", "11\n")
    tree.write(f"{CPU}/intel_pstate/num_pstates", "32\n")
    tree.write(f"{CPU}/cpuidle/current_driver", "intel_idle\n")
    tree.write(f"{CPU}/cpuidle/current_governor", "menu\n")
    tree.write(f"{CPU}/cpuidle/current_governor_ro", "menu\n")
    tree.write(f"{CPU}/cpuidle/available_governors", "ladder menu teo \n")
    current = [800081, 799912, 3899874, 800203, 800011, 812345, 3500002, 799998]
    for cpu in range(8):
        core, sibling = cpu % 4, (cpu + 4) % 8
        pair = sorted([cpu, sibling])
        topology = f"{CPU}/cpu{cpu}/topology"
        tree.write(f"{topology}/core_id", f"{core}\n")
        tree.write(f"{topology}/physical_package_id", "0\n")
        tree.write(f"{topology}/thread_siblings_list", f"{cpu_list(pair)}\n")
        policy = f"{CPU}/cpufreq/policy{cpu}"
        tree.link(f"{CPU}/cpu{cpu}/cpufreq", f"../cpufreq/policy{cpu}")
        for name, value in (
            ("affected_cpus", f"{cpu}"),
            ("cpuinfo_min_freq", "800000"),
            ("cpuinfo_max_freq", "3900000"),
            ("scaling_driver", "intel_pstate"),
            ("scaling_governor", "powersave"),
            ("scaling_available_governors", "performance powersave"),
            ("scaling_min_freq", "800000"),
            ("scaling_max_freq", "3900000"),
            ("scaling_cur_freq", f"{current[cpu]}"),
            ("energy_performance_preference", "balance_performance"),
        ):
            tree.write(f"{policy}/{name}", f"{value}\n")
        for index, state in enumerate(SKL_STATES):
            write_cpuidle_state(tree, cpu, index, state)
            # C8 was turned off by hand on every CPU (intel_idle lists it, the board's
            # package C-state limit never reaches it).
            disabled = "1" if state[0] == "C8" else "0"
            tree.write(f"{CPU}/cpu{cpu}/cpuidle/state{index}/disable", f"{disabled}\n")
    vulnerabilities = {
        "gather_data_sampling": "Mitigation: Microcode",
        "itlb_multihit": "KVM: Mitigation: VMX disabled",
        "l1tf": "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT vulnerable",
        "mds": "Mitigation: Clear CPU buffers; SMT vulnerable",
        "meltdown": "Mitigation: PTI",
        "mmio_stale_data": "Mitigation: Clear CPU buffers; SMT vulnerable",
        "retbleed": "Mitigation: IBRS",
        "spec_rstack_overflow": "Not affected",
        "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
        "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
        "spectre_v2": "Mitigation: IBRS; IBPB: conditional; STIBP: conditional; RSB filling; "
        "PBRSB-eIBRS: Not affected; BHI: Not affected",
        "srbds": "Mitigation: Microcode",
        "tsx_async_abort": "Mitigation: TSX disabled",
    }
    for name, status in vulnerabilities.items():
        tree.write(f"{CPU}/vulnerabilities/{name}", f"{status}\n")
    tree.write("sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n")
    tree.write("sys/class/dmi/id/sys_vendor", "Supermicro\n")
    tree.write("sys/class/dmi/id/product_name", "Super Server\n")
    tree.write("sys/class/dmi/id/board_name", "X11SSH-F\n")
    tree.write("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n")
    tree.write(
        "sys/kernel/mm/transparent_hugepage/defrag",
        "always defer defer+madvise [madvise] never\n",
    )
    release = "6.1.0-18-amd64"
    tree.write("proc/sys/kernel/osrelease", f"{release}\n")
    tree.write("proc/sys/kernel/random/boot_id", "3b1f6c2e-8d4a-4f0e-9a57-2c6e1d9b7a41\n")
    tree.write(
        "proc/cmdline",
        f"BOOT_IMAGE=/boot/vmlinuz-{release} root=UUID=5c2f8a91-3e7b-4d26-b1a0-7f9e4c3d2b18 "
        "ro quiet\n",
    )
    tree.write(
        f"boot/config-{release}",
        "#\n# Automatically generated file; DO NOT EDIT.\n"
        "# Linux/x86 6.1.76 Kernel Configuration\n#\n"
        "# (excerpt: the timer, tick and CPU accounting sections of Debian's config)\n"
        "#\n# Timers subsystem\n#\nCONFIG_TICK_ONESHOT=y\nCONFIG_NO_HZ_COMMON=y\n"
        "# CONFIG_HZ_PERIODIC is not set\nCONFIG_NO_HZ_IDLE=y\n# CONFIG_NO_HZ_FULL is not set\n"
        "CONFIG_NO_HZ=y\nCONFIG_HIGH_RES_TIMERS=y\n\n#\n# CPU/Task time and stats accounting\n"
        "#\nCONFIG_TICK_CPU_ACCOUNTING=y\n# CONFIG_VIRT_CPU_ACCOUNTING_GEN is not set\n"
        "CONFIG_IRQ_TIME_ACCOUNTING=y\nCONFIG_HAVE_SCHED_AVG_IRQ=y\n"
        "CONFIG_BSD_PROCESS_ACCT=y\n\n# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\n"
        "# CONFIG_HZ_300 is not set\n# CONFIG_HZ_1000 is not set\nCONFIG_HZ=250\n",
    )
    tree.write(
        "proc/stat",
        proc_stat(
            [
                (912345, 120, 201234, 98765432, 12345, 0, 45678, 0, 0, 0),
                (801234, 98, 187654, 98876543, 11234, 0, 34567, 0, 0, 0),
                (790123, 101, 176543, 98987654, 10123, 0, 23456, 0, 0, 0),
                (780012, 87, 165432, 99098765, 9012, 0, 12345, 0, 0, 0),
                (456789, 45, 98765, 99567890, 5678, 0, 2345, 0, 0, 0),
                (445678, 43, 87654, 99678901, 4567, 0, 1234, 0, 0, 0),
                (434567, 41, 76543, 99789012, 3456, 0, 1123, 0, 0, 0),
                (423456, 39, 65432, 99890123, 2345, 0, 1012, 0, 0, 0),
            ]
        ),
    )
    tree.write(
        "proc/meminfo",
        "MemTotal:       32758424 kB\nMemFree:        28123456 kB\nMemAvailable:   "
        "30987654 kB\nBuffers:          234567 kB\nCached:          2345678 kB\nSwapCached:"
        "            0 kB\nSwapTotal:       8388604 kB\nSwapFree:        8388604 kB\n",
    )
    tree.write("proc/sys/vm/swappiness", "60\n")
    tree.write("proc/1/comm", "systemd\n")
    tree.write("proc/612/comm", "sshd\n")
    tree.write("proc/873/comm", "irqbalance\n")
    tree.write("proc/1204/comm", "bash\n")
    tree.write("proc/sys/net/core/rps_sock_flow_entries", "0\n")
    # eno1: an I210 at 0000:03:00.0 behind the root port 00:1c.4; igb names its queue
    # vectors `eno1-TxRx-N` and its link vector `eno1`.
    device = "sys/devices/pci0000:00/0000:00:1c.4/0000:03:00.0"
    tree.link("sys/class/net/eno1", "../../devices/pci0000:00/0000:00:1c.4/0000:03:00.0/net/eno1")
    tree.link(f"{device}/net/eno1/device", "../../../0000:03:00.0")
    tree.link(f"{device}/driver", "../../../../bus/pci/drivers/igb")
    for queue in range(4):
        tree.write(f"{device}/net/eno1/queues/rx-{queue}/rps_cpus", "00\n")
        tree.write(f"{device}/net/eno1/queues/rx-{queue}/rps_flow_cnt", "0\n")
        tree.write(f"{device}/net/eno1/queues/tx-{queue}/xps_cpus", "00\n")
    chip = "IR-PCI-MSI 1572864-edge"
    lines: list[tuple[int, list[int], str, str]] = [
        (0, [38, 0, 0, 0, 0, 0, 0, 0], "IR-IO-APIC    2-edge     ", "timer"),
        (8, [0, 0, 1, 0, 0, 0, 0, 0], "IR-IO-APIC    8-edge     ", "rtc0"),
        (130, [0, 0, 0, 0, 0, 3, 0, 0], f"{chip}     ", "eno1"),
    ]
    for queue in range(4):
        counts = [0] * 8
        counts[queue] = 48_213_077 - queue * 1_000_003
        lines.append(
            (131 + queue, counts, f"IR-PCI-MSI {1572865 + queue}-edge     ", f"eno1-TxRx-{queue}")
        )
        tree.write(f"proc/irq/{131 + queue}/smp_affinity_list", f"{queue}\n")
        tree.write(f"proc/irq/{131 + queue}/smp_affinity", f"{cpu_mask([queue], 8)}\n")
        tree.write(f"proc/irq/{131 + queue}/effective_affinity_list", f"{queue}\n")
    tree.write("proc/irq/130/smp_affinity_list", "5\n")
    tree.write("proc/irq/130/effective_affinity_list", "5\n")
    tree.write("proc/interrupts", interrupts(8, lines))


# acpi_idle on AMD Zen 2 (from the ACPI _CST): C1 by MWAIT, C2 (CC6) by an I/O port read.
ZEN2_STATES = [
    ("POLL", "CPUIDLE CORE POLL IDLE", 0, 0),
    ("C1", "ACPI FFH MWAIT 0x0", 1, 2),
    ("C2", "ACPI IOPORT 0x814", 400, 800),
]
ZEN2_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx "
    "fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good "
    "nopl nonstop_tsc cpuid extd_apicid aperfmperf rapl pni pclmulqdq monitor ssse3 fma "
    "cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand lahf_lm cmp_legacy svm "
    "extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext "
    "perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate ssbd mba "
    "ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 cqm rdt_a rdseed adx smap "
    "clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc "
    "cqm_mbm_total cqm_mbm_local clzero irperf xsaveerptr rdpru wbnoinvd amd_ppin arat npt "
    "lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter "
    "pfthreshold avic v_vmsave_vmload vgif v_spec_ctrl umip rdpid overflow_recov succor smca "
    "sev sev_es"
)


def amd(tree: Tree) -> None:
    """A Supermicro AS-1114S-WTRT with an EPYC 7232P (Zen 2, 8 cores) booted with nosmt
    (CPUs 8-15 offline), a self-built 6.6 kernel with /proc/config.gz and without IRQ time
    accounting, acpi-cpufreq with schedutil and boost on, acpi_idle (C2 = CC6, 400 µs),
    CPUs 2-3 isolated, and a ConnectX-4 Lx (mlx5) as enp65s0f0np0."""
    model = "AMD EPYC 7232P 8-Core Processor"
    cpuinfo = ""
    for cpu in range(8):
        cpuinfo += (
            f"processor\t: {cpu}\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 49\n"
            f"model name\t: {model}\nstepping\t: 0\nmicrocode\t: 0x830107a\ncpu MHz\t\t: "
            f"1500.000\ncache size\t: 512 KB\nphysical id\t: 0\nsiblings\t: 8\ncore id\t\t: "
            f"{cpu}\ncpu cores\t: 8\napicid\t\t: {2 * cpu}\ninitial apicid\t: {2 * cpu}\n"
            "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 16\nwp\t\t: yes\n"
            f"flags\t\t: {ZEN2_FLAGS}\nbugs\t\t: sysret_ss_attrs spectre_v1 spectre_v2 "
            "spec_store_bypass retbleed smt_rsb srso\nbogomips\t: 6188.27\nTLB size\t: 3072 "
            "4K pages\nclflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 43 bits "
            "physical, 48 bits virtual\npower management: ts ttp tm hwpstate cpb eff_freq_ro "
            "[13] [14]\n\n"
        )
    tree.write("proc/cpuinfo", cpuinfo)
    for name, value in (("online", "0-7"), ("possible", "0-15"), ("present", "0-15")):
        tree.write(f"{CPU}/{name}", f"{value}\n")
    tree.write(f"{CPU}/offline", "8-15\n")
    tree.write(f"{CPU}/isolated", "2-3\n")
    tree.write(f"{CPU}/nohz_full", "2-3\n")
    tree.write(f"{CPU}/smt/control", "off\n")
    tree.write(f"{CPU}/smt/active", "0\n")
    tree.write(f"{CPU}/cpufreq/boost", "1\n")
    tree.write(f"{CPU}/cpuidle/current_driver", "acpi_idle\n")
    tree.write(f"{CPU}/cpuidle/current_governor", "menu\n")
    tree.write(f"{CPU}/cpuidle/current_governor_ro", "menu\n")
    tree.write(f"{CPU}/cpuidle/available_governors", "ladder menu teo \n")
    for cpu in range(8, 16):
        tree.write(f"{CPU}/cpu{cpu}/online", "0\n")
    current = [1500000, 1500000, 3100000, 3100000, 2800000, 1500000, 1500000, 1500000]
    for cpu in range(8):
        if cpu:  # CPU 0 cannot go offline: it has no `online` file
            tree.write(f"{CPU}/cpu{cpu}/online", "1\n")
        topology = f"{CPU}/cpu{cpu}/topology"
        tree.write(f"{topology}/core_id", f"{cpu}\n")
        tree.write(f"{topology}/physical_package_id", "0\n")
        tree.write(f"{topology}/thread_siblings_list", f"{cpu}\n")
        policy = f"{CPU}/cpufreq/policy{cpu}"
        tree.link(f"{CPU}/cpu{cpu}/cpufreq", f"../cpufreq/policy{cpu}")
        for name, value in (
            ("affected_cpus", f"{cpu}"),
            ("cpuinfo_min_freq", "1500000"),
            ("cpuinfo_max_freq", "3100000"),
            ("scaling_driver", "acpi-cpufreq"),
            ("scaling_governor", "schedutil"),
            (
                "scaling_available_governors",
                "conservative ondemand userspace powersave performance schedutil ",
            ),
            ("scaling_min_freq", "1500000"),
            ("scaling_max_freq", "3100000"),
            ("scaling_cur_freq", f"{current[cpu]}"),
        ):
            tree.write(f"{policy}/{name}", f"{value}\n")
        for index, state in enumerate(ZEN2_STATES):
            write_cpuidle_state(tree, cpu, index, state)
            tree.write(f"{CPU}/cpu{cpu}/cpuidle/state{index}/disable", "0\n")
    vulnerabilities = {
        "gather_data_sampling": "Not affected",
        "itlb_multihit": "Not affected",
        "l1tf": "Not affected",
        "mds": "Not affected",
        "meltdown": "Not affected",
        "mmio_stale_data": "Not affected",
        "retbleed": "Mitigation: untrained return thunk; SMT disabled",
        "spec_rstack_overflow": "Mitigation: Safe RET",
        "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
        "spectre_v1": "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
        "spectre_v2": "Mitigation: Retpolines; IBPB: conditional; STIBP: disabled; RSB "
        "filling; PBRSB-eIBRS: Not affected; BHI: Not affected",
        "srbds": "Not affected",
        "tsx_async_abort": "Not affected",
    }
    for name, status in vulnerabilities.items():
        tree.write(f"{CPU}/vulnerabilities/{name}", f"{status}\n")
    tree.write("sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n")
    tree.write("sys/class/dmi/id/sys_vendor", "Supermicro\n")
    tree.write("sys/class/dmi/id/product_name", "AS -1114S-WTRT\n")
    tree.write("sys/class/dmi/id/board_name", "H12SSW-NTR\n")
    tree.write("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
    tree.write(
        "sys/kernel/mm/transparent_hugepage/defrag",
        "always defer defer+madvise [madvise] never\n",
    )
    release = "6.6.10-bench"
    tree.write("proc/sys/kernel/osrelease", f"{release}\n")
    tree.write("proc/sys/kernel/random/boot_id", "9e2d4b71-6a3c-4e85-b0f2-1d7c5a8e3f96\n")
    tree.write("proc/sys/kernel/io_uring_disabled", "0\n")
    tree.write(
        "proc/cmdline",
        f"BOOT_IMAGE=/boot/vmlinuz-{release} root=/dev/nvme0n1p2 ro nosmt "
        "isolcpus=nohz,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 mitigations=auto\n",
    )
    tree.gzip(
        "proc/config.gz",
        "#\n# Automatically generated file; DO NOT EDIT.\n"
        "# Linux/x86 6.6.10 Kernel Configuration\n#\n"
        "# (excerpt: the timer, tick and CPU accounting sections)\n"
        "#\n# Timers subsystem\n#\nCONFIG_TICK_ONESHOT=y\nCONFIG_NO_HZ_COMMON=y\n"
        "# CONFIG_HZ_PERIODIC is not set\n# CONFIG_NO_HZ_IDLE is not set\nCONFIG_NO_HZ_FULL=y\n"
        "CONFIG_CONTEXT_TRACKING_USER=y\nCONFIG_NO_HZ=y\nCONFIG_HIGH_RES_TIMERS=y\n\n#\n"
        "# CPU/Task time and stats accounting\n#\nCONFIG_VIRT_CPU_ACCOUNTING=y\n"
        "CONFIG_VIRT_CPU_ACCOUNTING_GEN=y\n# CONFIG_IRQ_TIME_ACCOUNTING is not set\n"
        "CONFIG_BSD_PROCESS_ACCT=y\n\n# CONFIG_HZ_100 is not set\n# CONFIG_HZ_250 is not set\n"
        "# CONFIG_HZ_300 is not set\nCONFIG_HZ_1000=y\nCONFIG_HZ=1000\n",
    )
    tree.write(
        "proc/stat",
        proc_stat(
            [
                (512345, 20, 101234, 88765432, 2345, 0, 5678, 0, 0, 0),
                (401234, 18, 87654, 88876543, 1234, 0, 4567, 0, 0, 0),
                (2012345, 0, 412345, 85987654, 10, 0, 345678, 0, 0, 0),
                (12, 0, 34, 88998765, 0, 0, 45, 0, 0, 0),
                (1456789, 5, 398765, 86567890, 78, 0, 12345, 0, 0, 0),
                (1445678, 4, 387654, 86678901, 67, 0, 11234, 0, 0, 0),
                (34567, 3, 6543, 88789012, 56, 0, 1123, 0, 0, 0),
                (23456, 2, 5432, 88890123, 45, 0, 1012, 0, 0, 0),
            ]
        ),
    )
    tree.write(
        "proc/meminfo",
        "MemTotal:       65721484 kB\nMemFree:        61234567 kB\nMemAvailable:   "
        "63456789 kB\nBuffers:          123456 kB\nCached:          1234567 kB\nSwapCached:"
        "            0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
    )
    tree.write("proc/sys/vm/swappiness", "10\n")
    tree.write("proc/1/comm", "systemd\n")
    tree.write("proc/702/comm", "sshd\n")
    tree.write("proc/1377/comm", "tmux: server\n")
    tree.write("proc/sys/net/core/rps_sock_flow_entries", "32768\n")
    # enp65s0f0np0: a ConnectX-4 Lx port at 0000:41:00.0; mlx5 names its vectors after
    # the PCI function (`mlx5_comp3@pci:0000:41:00.0`), one completion vector per CPU.
    device = "sys/devices/pci0000:40/0000:40:01.1/0000:41:00.0"
    name = "enp65s0f0np0"
    tree.link(
        f"sys/class/net/{name}", f"../../devices/pci0000:40/0000:40:01.1/0000:41:00.0/net/{name}"
    )
    tree.link(f"{device}/net/{name}/device", "../../../0000:41:00.0")
    tree.link(f"{device}/driver", "../../../../bus/pci/drivers/mlx5_core")
    for queue in range(8):
        tree.write(f"{device}/net/{name}/queues/rx-{queue}/rps_cpus", f"{cpu_mask([], 16)}\n")
        tree.write(f"{device}/net/{name}/queues/rx-{queue}/rps_flow_cnt", "4096\n")
        tree.write(f"{device}/net/{name}/queues/tx-{queue}/xps_cpus", f"{cpu_mask([queue], 16)}\n")
    lines: list[tuple[int, list[int], str, str]] = [
        (0, [44, 0, 0, 0, 0, 0, 0, 0], "IR-IO-APIC    2-edge     ", "timer"),
        (
            98,
            [0, 0, 0, 0, 0, 0, 1021, 0],
            "IR-PCI-MSI 136314880-edge     ",
            "mlx5_async0@pci:0000:41:00.0",
        ),
    ]
    for queue in range(8):
        counts = [0] * 8
        counts[queue] = 7_654_321 + queue * 1_234
        irq = 99 + queue
        lines.append(
            (
                irq,
                counts,
                f"IR-PCI-MSI {136314881 + queue}-edge     ",
                f"mlx5_comp{queue}@pci:0000:41:00.0",
            )
        )
        tree.write(f"proc/irq/{irq}/smp_affinity_list", f"{queue}\n")
        tree.write(f"proc/irq/{irq}/smp_affinity", f"{cpu_mask([queue], 16)}\n")
        tree.write(f"proc/irq/{irq}/effective_affinity_list", f"{queue}\n")
    tree.write("proc/irq/98/smp_affinity_list", "0-7\n")
    tree.write("proc/irq/98/effective_affinity_list", "6\n")
    tree.write("proc/interrupts", interrupts(8, lines))


def ethtool_features(interface: str, values: dict[str, str]) -> str:
    """`ethtool -k` output (ethtool 6.1): the top-level features orch keeps, in ethtool's
    order, with a few of their sub-features as ethtool indents them."""
    order = [
        "rx-checksumming",
        "tx-checksumming",
        "scatter-gather",
        "tcp-segmentation-offload",
        "generic-segmentation-offload",
        "generic-receive-offload",
        "large-receive-offload",
        "rx-vlan-offload",
        "tx-vlan-offload",
        "ntuple-filters",
        "receive-hashing",
        "highdma",
        "rx-gro-hw",
        "rx-gro-list",
    ]
    out = f"Features for {interface}:\n"
    for name in order:
        out += f"{name}: {values[name]}\n"
        if name == "tx-checksumming":
            out += "\ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on\n"
        if name == "tcp-segmentation-offload":
            out += "\ttx-tcp-segmentation: on\n\ttx-tcp6-segmentation: on\n"
    return out


def ethtool_channels(interface: str, maximum: int, current: int) -> str:
    """`ethtool -l` output."""
    block = "RX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t{}\n"
    return (
        f"Channel parameters for {interface}:\nPre-set maximums:\n{block.format(maximum)}"
        f"Current hardware settings:\n{block.format(current)}"
    )


def ethtool_coalesce(interface: str, adaptive: tuple[str, str], values: dict[str, int]) -> str:
    """`ethtool -c` output (the fields a driver does not support read n/a)."""

    def field(name: str) -> str:
        return f"{name}: {values.get(name, 'n/a')}\n"

    return (
        f"Coalesce parameters for {interface}:\nAdaptive RX: {adaptive[0]}  TX: {adaptive[1]}\n"
        "stats-block-usecs: n/a\nsample-interval: n/a\npkt-rate-low: n/a\npkt-rate-high: n/a\n\n"
        + field("rx-usecs")
        + field("rx-frames")
        + "rx-usecs-irq: n/a\nrx-frames-irq: n/a\n\n"
        + field("tx-usecs")
        + field("tx-frames")
        + "tx-usecs-irq: n/a\ntx-frames-irq: n/a\n\n"
        "CQE mode RX: n/a  TX: n/a\n\n"
    )


def commands(folder: Path, interface: str, channels: str, coalesce: str, features: str) -> None:
    """The recorded output of `ethtool -l/-c/-k INTERFACE`, one file per flag."""
    folder.mkdir(parents=True, exist_ok=True)
    for flag, text in (("l", channels), ("c", coalesce), ("k", features)):
        (folder / f"ethtool-{flag}.txt").write_text(text, encoding="utf-8")


def main() -> None:
    for name, build in (("intel-xeon-e3", intel), ("amd-epyc-acpi", amd)):
        root = HERE / name / "root"
        shutil.rmtree(root, ignore_errors=True)
        build(Tree(root))
    on, off, fixed = "on", "off", "off [fixed]"
    commands(
        HERE / "intel-xeon-e3" / "commands",
        "eno1",
        ethtool_channels("eno1", 4, 4),
        ethtool_coalesce("eno1", ("off", "off"), {"rx-usecs": 3, "tx-usecs": 3}),
        ethtool_features(
            "eno1",
            {
                "rx-checksumming": on,
                "tx-checksumming": on,
                "scatter-gather": on,
                "tcp-segmentation-offload": on,
                "generic-segmentation-offload": on,
                "generic-receive-offload": on,
                "large-receive-offload": fixed,
                "rx-vlan-offload": on,
                "tx-vlan-offload": on,
                "ntuple-filters": off,
                "receive-hashing": on,
                "highdma": "on [fixed]",
                "rx-gro-hw": fixed,
                "rx-gro-list": off,
            },
        ),
    )
    commands(
        HERE / "amd-epyc-acpi" / "commands",
        "enp65s0f0np0",
        ethtool_channels("enp65s0f0np0", 8, 8),
        ethtool_coalesce(
            "enp65s0f0np0",
            ("on", "on"),
            {"rx-usecs": 8, "rx-frames": 128, "tx-usecs": 16, "tx-frames": 32},
        ),
        ethtool_features(
            "enp65s0f0np0",
            {
                "rx-checksumming": on,
                "tx-checksumming": on,
                "scatter-gather": on,
                "tcp-segmentation-offload": on,
                "generic-segmentation-offload": on,
                "generic-receive-offload": on,
                "large-receive-offload": off,
                "rx-vlan-offload": on,
                "tx-vlan-offload": on,
                "ntuple-filters": off,
                "receive-hashing": on,
                "highdma": "on [fixed]",
                "rx-gro-hw": off,
                "rx-gro-list": off,
            },
        ),
    )


if __name__ == "__main__":
    main()
