// Command summary turns the per-run TSV written by bench/load.sh into
// markdown: medians per workload and implementation, the ratio netloop/std of
// the medians (and netloop/base when the runs include netloop at an earlier
// revision, load.sh's BASE), the spread and utilisation of the runs, and
// every run.
//
//	summary RUNS.tsv
//
// The TSV has a header row and the columns workload, impl, round, ops_per_s,
// p99_us, cpu_us_per_op, syscalls_per_op, server_cpu_pct, load_cpu_pct,
// errors, unit (req or msg), syscall_source (perf or strace),
// server_cpu_busy_pct (all busy time of the server's CPU, from /proc/stat).
package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

type run struct {
	workload, impl, round, unit, source string
	v                                   map[string]float64 // numeric columns by name; NaN if missing
	errors                              string
}

var numeric = []string{"ops_per_s", "p99_us", "cpu_us_per_op", "syscalls_per_op", "server_cpu_pct", "load_cpu_pct", "server_cpu_busy_pct"}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: summary RUNS.tsv")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()

	var header []string
	var runs []run
	var workloads []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if header == nil {
			header = fields
			continue
		}
		col := func(name string) string {
			if i := slices.Index(header, name); i >= 0 && i < len(fields) {
				return fields[i]
			}
			return ""
		}
		r := run{workload: col("workload"), impl: col("impl"), round: col("round"),
			unit: col("unit"), source: col("syscall_source"), errors: col("errors"), v: map[string]float64{}}
		for _, name := range numeric {
			x, err := strconv.ParseFloat(col(name), 64)
			if err != nil {
				x = math.NaN()
			}
			r.v[name] = x
		}
		runs = append(runs, r)
		if !slices.Contains(workloads, r.workload) {
			workloads = append(workloads, r.workload)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	values := func(w, impl, name string) []float64 {
		var xs []float64
		for _, r := range runs {
			if r.workload == w && r.impl == impl && !math.IsNaN(r.v[name]) {
				xs = append(xs, r.v[name])
			}
		}
		return xs
	}
	unitOf := func(w string) string {
		for _, r := range runs {
			if r.workload == w && r.unit != "" {
				return r.unit
			}
		}
		return "req"
	}

	impls := []string{"std", "netloop"}
	withBase := slices.ContainsFunc(runs, func(r run) bool { return r.impl == "base" })
	if withBase {
		impls = []string{"std", "base", "netloop"}
		fmt.Println("Medians over the rounds; ratios of medians: netloop / std and netloop / base")
		fmt.Println("(base: netloop built from load.sh's BASE revision).")
	} else {
		fmt.Println("Medians over the rounds; ratio = netloop median / std median.")
	}
	fmt.Println("Throughput: higher is better. p99, CPU and syscalls: lower is better.")
	fmt.Println()
	if withBase {
		fmt.Println("| workload | metric | std | base | netloop | netloop/std | netloop/base |")
		fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	} else {
		fmt.Println("| workload | metric | std | netloop | netloop/std |")
		fmt.Println("|---|---|---:|---:|---:|")
	}
	for _, w := range workloads {
		u := unitOf(w)
		metrics := []struct{ name, label, format string }{
			{"ops_per_s", u + "/s", "%.0f"},
			{"p99_us", "p99 latency (ms)", "%.2f"},
			{"cpu_us_per_op", "server CPU per " + u + " (µs)", "%.2f"},
			{"syscalls_per_op", "syscalls per " + u, "%.2f"},
		}
		for i, m := range metrics {
			s, n := median(values(w, "std", m.name)), median(values(w, "netloop", m.name))
			scale := 1.0
			if m.name == "p99_us" {
				scale = 1e-3
			}
			label := ""
			if i == 0 {
				label = w
			}
			if withBase {
				b := median(values(w, "base", m.name))
				fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", label, m.label,
					num(m.format, s*scale), num(m.format, b*scale), num(m.format, n*scale), num("%.2f", n/s), num("%.2f", n/b))
				continue
			}
			fmt.Printf("| %s | %s | %s | %s | %s |\n", label, m.label,
				num(m.format, s*scale), num(m.format, n*scale), num("%.2f", n/s))
		}
	}

	fmt.Println()
	fmt.Println("Spread and utilisation: throughput min..max over the rounds; median CPU")
	fmt.Println("use over the window (100 % = one core) of the server process, of the whole")
	fmt.Println("CPU it is pinned to (adds softirq work and any other process there), and of")
	fmt.Println("the load tool. A side near 100 % set the pace; when it is the load tool the")
	fmt.Println("throughput ratio is capped and only CPU and syscalls per request compare.")
	fmt.Println("\"server's CPU shared\": that CPU was busy but under 80 % of it was billed to")
	fmt.Println("the server (other processes ran there, or softirq work billed to no one);")
	fmt.Println("\"neither\": the host held the run back. Either way throughput and latency")
	fmt.Println("say little about the server.")
	fmt.Println()
	fmt.Println("| workload | impl | runs | throughput min..max | server CPU % | server's CPU busy % | load tool CPU % | pace set by | errors | syscalls from |")
	fmt.Println("|---|---|---:|---|---:|---:|---:|---|---|---|")
	for _, w := range workloads {
		for _, impl := range impls {
			ops := values(w, impl, "ops_per_s")
			var errs, srcs []string
			for _, r := range runs {
				if r.workload == w && r.impl == impl {
					errs = append(errs, r.errors)
					if !slices.Contains(srcs, r.source) {
						srcs = append(srcs, r.source)
					}
				}
			}
			srv, ld := median(values(w, impl, "server_cpu_pct")), median(values(w, impl, "load_cpu_pct"))
			busy := median(values(w, impl, "server_cpu_busy_pct"))
			fmt.Printf("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", w, impl, len(errs),
				minMax(ops), num("%.0f", srv), num("%.0f", busy), num("%.0f", ld), pace(srv, busy, ld),
				strings.Join(errs, ","), strings.Join(srcs, ","))
		}
	}

	fmt.Println()
	fmt.Println("Every run, in the order run:")
	fmt.Println()
	fmt.Println("| workload | round | impl | ops/s | p99 ms | CPU µs/op | syscalls/op | server CPU % | its CPU busy % | load CPU % | errors |")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range runs {
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.workload, r.round, r.impl,
			num("%.0f", r.v["ops_per_s"]), num("%.2f", r.v["p99_us"]/1e3), num("%.2f", r.v["cpu_us_per_op"]),
			num("%.2f", r.v["syscalls_per_op"]), num("%.0f", r.v["server_cpu_pct"]),
			num("%.0f", r.v["server_cpu_busy_pct"]), num("%.0f", r.v["load_cpu_pct"]), r.errors)
	}
}

// pace names the side that was saturated (median CPU use of at least 90 %).
func pace(server, busy, load float64) string {
	switch s, l := server >= 90, load >= 90; {
	case s && l:
		return "both"
	case s:
		return "server"
	case l:
		return "load tool"
	case math.IsNaN(server) || math.IsNaN(load):
		return "-"
	case busy >= 90 && server < 80:
		return "server's CPU shared"
	}
	return "neither (held back)"
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f..%.0f", slices.Min(xs), slices.Max(xs))
}

func num(format string, x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	return fmt.Sprintf(format, x)
}
