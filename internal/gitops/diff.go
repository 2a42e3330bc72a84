package gitops

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the line diff's table (lines before × lines after);
// config files are far smaller.
const maxDiffCells = 4_000_000

type opKind byte

const (
	opEqual opKind = iota
	opDelete
	opInsert
)

type op struct {
	kind opKind
	a, b int // line index in before (equal, delete) and after (equal, insert)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// lineDiff is a longest-common-subsequence line diff; ok is false when the
// inputs are too large for it.
func lineDiff(a, b []string) (ops []op, ok bool) {
	n, m := len(a), len(b)
	if (n+1)*(m+1) > maxDiffCells {
		return nil, false
	}
	// lcs[i][j] = LCS length of a[i:], b[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{opEqual, i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{opDelete, i, j})
			i++
		default:
			ops = append(ops, op{opInsert, i, j})
			j++
		}
	}
	return ops, true
}

// unifiedDiff renders before→after as a unified diff of file with three
// lines of context; "" when they are equal.
func unifiedDiff(file, before, after string) string {
	if before == after {
		return ""
	}
	a, b := splitLines(before), splitLines(after)
	ops, ok := lineDiff(a, b)
	if !ok {
		ops = nil
		for i := range a {
			ops = append(ops, op{opDelete, i, 0})
		}
		for j := range b {
			ops = append(ops, op{opInsert, len(a), j})
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- a/%s\n+++ b/%s\n", file, file)
	const ctx = 3
	for start := 0; start < len(ops); {
		// Find the next change.
		for start < len(ops) && ops[start].kind == opEqual {
			start++
		}
		if start == len(ops) {
			break
		}
		lo := max(start-ctx, 0)
		end := start
		for end < len(ops) {
			if ops[end].kind != opEqual {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == opEqual {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				break
			}
			end = run
		}
		hi := min(end+ctx, len(ops))
		var aStart, bStart, aLen, bLen int
		aStart, bStart = ops[lo].a, ops[lo].b
		var body strings.Builder
		for _, o := range ops[lo:hi] {
			switch o.kind {
			case opEqual:
				aLen++
				bLen++
				body.WriteString(" " + ensureNL(a[o.a]))
			case opDelete:
				aLen++
				body.WriteString("-" + ensureNL(a[o.a]))
			case opInsert:
				bLen++
				body.WriteString("+" + ensureNL(b[o.b]))
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n%s", hunkRange(aStart, aLen), hunkRange(bStart, bLen), body.String())
		start = hi
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func ensureNL(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// keepLayout carries the change from normBefore to normAfter (the
// re-encoded file before and after the edit) over to orig, the file as
// its authors wrote it, so blank lines and spacing the YAML encoder would
// drop stay where they were. It returns "", false when the change cannot
// be placed line for line; the caller then uses normAfter.
func keepLayout(orig, normBefore, normAfter string) (string, bool) {
	if orig != "" && !strings.HasSuffix(orig, "\n") {
		orig += "\n"
	}
	A, B, C := splitLines(orig), splitLines(normBefore), splitLines(normAfter)
	ab, ok := lineDiff(A, B)
	if !ok {
		return "", false
	}
	bToA := make([]int, len(B))
	for i := range bToA {
		bToA[i] = -1
	}
	for _, o := range ab {
		if o.kind == opEqual {
			bToA[o.b] = o.a
		}
	}
	bc, ok := lineDiff(B, C)
	if !ok {
		return "", false
	}
	type splice struct {
		from, to int // replace A[from:to]
		lines    []string
	}
	var splices []splice
	for k := 0; k < len(bc); {
		if bc[k].kind == opEqual {
			k++
			continue
		}
		var dels []int
		var ins []string
		at := bc[k].a // B index where the hunk starts
		for k < len(bc) && bc[k].kind != opEqual {
			if bc[k].kind == opDelete {
				dels = append(dels, bc[k].a)
			} else {
				ins = append(ins, C[bc[k].b])
			}
			k++
		}
		var s splice
		if len(dels) > 0 {
			first, last := bToA[dels[0]], bToA[dels[len(dels)-1]]
			if first < 0 || last < 0 || last-first != len(dels)-1 {
				return "", false
			}
			for n, d := range dels {
				if bToA[d] != first+n {
					return "", false
				}
			}
			s = splice{first, last + 1, ins}
		} else {
			pos := 0
			if at > 0 {
				if bToA[at-1] < 0 {
					return "", false
				}
				pos = bToA[at-1] + 1
			} else if len(B) > 0 {
				if bToA[0] < 0 {
					return "", false
				}
				pos = bToA[0]
			}
			s = splice{pos, pos, ins}
		}
		splices = append(splices, s)
	}
	var out strings.Builder
	next := 0
	for _, s := range splices {
		if s.from < next {
			return "", false
		}
		for _, l := range A[next:s.from] {
			out.WriteString(l)
		}
		for _, l := range s.lines {
			out.WriteString(l)
		}
		next = s.to
	}
	for _, l := range A[next:] {
		out.WriteString(l)
	}
	return out.String(), true
}
