package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/cluster"
)

// The roles a replica can have in `vsr client status`. A stale primary is
// still normal and primary of an older view than the newest normal view any
// replica reported: it was cut off and has not learned of the view change,
// and it cannot commit anything, so calling it the primary would mislead.
const (
	rolePrimary      = "primary"
	roleBackup       = "backup"
	roleStalePrimary = "stale-primary"
)

// primaryMark is how the table shows the primary's role: one token, so that
// a script splitting the table on whitespace still sees the same columns on
// every row, with a star that stands out at the start of the column.
const primaryMark = "*" + rolePrimary

// statusDown is the STATUS of a replica that did not answer in time.
const statusDown = "down"

// statusDigestBytes is how much of the state digest the table shows: enough
// to tell apart states that differ, short enough to keep the row on a line.
const statusDigestBytes = 6

// statusFormat chooses what `vsr client status` prints.
type statusFormat struct {
	digest bool // show each replica's state digest
	json   bool // one JSON document instead of the table
}

// groupStatus is the status of the group as the command shows it. It is
// computed once from the replies so that the table and the JSON cannot
// disagree, and it is the JSON document itself.
type groupStatus struct {
	Replicas []replicaStatus `json:"replicas"`
	// Primary is the index of the primary among the replicas asked, or null
	// when no replica is the primary of the newest normal view.
	Primary *int `json:"primary"`
	// Members and Epoch are the configuration of the newest epoch any
	// replica reported: after a reconfiguration the addresses asked may not
	// be the members any more. Epoch is null and Members empty when no
	// replica answered.
	Members []string `json:"members"`
	Epoch   *uint64  `json:"epoch"`
}

// replicaStatus is one replica's row. A replica that did not answer has
// reachable false, status "down" and no numbers: the numeric fields are
// pointers with omitempty, so they are absent rather than a misleading 0,
// while a reachable replica's zeros are still printed. Lag alone has no
// omitempty: it is null whenever it is unknown (the replica is down, no
// primary answered, or the replica is in another epoch or view than the
// primary), so a script finds the key on every row.
type replicaStatus struct {
	Replica   int     `json:"replica"` // the index among the addresses asked
	Address   string  `json:"address"`
	Reachable bool    `json:"reachable"`
	Status    string  `json:"status"`
	Role      string  `json:"role,omitempty"`
	Epoch     *uint64 `json:"epoch,omitempty"`
	View      *uint64 `json:"view,omitempty"`
	Op        *uint64 `json:"op,omitempty"`
	Commit    *uint64 `json:"commit,omitempty"`
	Lag       *uint64 `json:"lag"`
	Dropped   *uint64 `json:"dropped,omitempty"`
	// Digest is the whole state digest in hex, only with -digest: a script
	// comparing states wants all of it, unlike a person reading the table.
	Digest string `json:"digest,omitempty"`
}

// printStatus prints the replies of a status query, one per address in
// cfg.Replicas (nil for a replica that did not answer), as a table or as
// JSON. It returns the exit code: 1 if any replica was unreachable, so that
// a health check fails, and 0 otherwise.
func printStatus(st []*actors.StatusReply, cfg cluster.Config, f statusFormat, w io.Writer) int {
	g := summarizeStatus(st, cfg, f.digest)
	if f.json {
		printStatusJSON(g, w)
	} else {
		printStatusTable(g, f.digest, w)
	}
	for _, s := range st {
		if s == nil {
			return 1
		}
	}
	return 0
}

// summarizeStatus turns the replies into the rows and the group's primary
// and configuration.
func summarizeStatus(st []*actors.StatusReply, cfg cluster.Config, digest bool) groupStatus {
	g := groupStatus{Replicas: make([]replicaStatus, len(st)), Members: []string{}}
	var pr *actors.StatusReply
	if p := findPrimary(st); p >= 0 {
		pr, g.Primary = st[p], &p
	}
	for j, s := range st {
		g.Replicas[j] = replicaRow(j, cfg.Replicas[j], s, pr, digest)
	}
	if latest := newestConfiguration(st); latest != nil {
		g.Epoch = &latest.Epoch
		g.Members = append(g.Members, latest.Members...)
	}
	return g
}

// findPrimary returns the index of the primary's reply, or -1. The primary
// is the replica that is normal and primary in the newest (epoch, view) of
// any normal reply: views start again at 0 in every epoch, so a view alone
// orders nothing. If that view's primary did not answer, there is no
// primary, even if a replica cut off in an older view still believes it is
// one.
func findPrimary(st []*actors.StatusReply) int {
	var newest *actors.StatusReply
	for _, s := range st {
		if s != nil && s.Status == "normal" && (newest == nil || newerView(s, newest)) {
			newest = s
		}
	}
	for j, s := range st {
		if s != nil && newest != nil && claimsPrimary(s) && !newerView(newest, s) {
			return j
		}
	}
	return -1
}

// newerView reports whether a is in a later (epoch, view) than b.
func newerView(a, b *actors.StatusReply) bool {
	if a.Epoch != b.Epoch {
		return a.Epoch > b.Epoch
	}
	return a.View > b.View
}

// claimsPrimary reports whether the replica believes it is the primary of
// its view; findPrimary decides whether that view is still the group's.
func claimsPrimary(s *actors.StatusReply) bool {
	return s.Status == "normal" && s.Primary == s.Replica
}

// replicaRow is the row of the replica at index j, given the primary's
// reply (nil for none).
func replicaRow(j int, addr string, s, pr *actors.StatusReply, digest bool) replicaStatus {
	r := replicaStatus{Replica: j, Address: addr}
	if s == nil {
		r.Status = statusDown
		return r
	}
	r.Reachable = true
	r.Status = s.Status
	r.Role = roleBackup
	switch {
	case s == pr:
		r.Role = rolePrimary
	case claimsPrimary(s):
		r.Role = roleStalePrimary
	}
	// Dropped adds the messages the core dropped, for any reason, and those
	// that came from an address that is not the named replica's: the
	// one-line format before the table showed that sum, and keeping it keeps
	// the number's meaning for whoever watched it.
	dropped := s.Dropped + s.Foreign
	r.Epoch, r.View, r.Op, r.Commit, r.Dropped = &s.Epoch, &s.View, &s.OpNumber, &s.CommitNumber, &dropped
	r.Lag = lagBehind(s, pr)
	if digest {
		r.Digest = hex.EncodeToString(s.Digest)
	}
	return r
}

// lagBehind is how many ops s is behind the primary pr, or nil when that is
// unknown: op numbers of replicas in different views may belong to
// different histories, so only replicas in the primary's epoch and view are
// compared. It is never negative.
func lagBehind(s, pr *actors.StatusReply) *uint64 {
	if s == nil || pr == nil || s.Epoch != pr.Epoch || s.View != pr.View {
		return nil
	}
	lag := uint64(0)
	if pr.OpNumber > s.OpNumber {
		lag = pr.OpNumber - s.OpNumber
	}
	return &lag
}

// newestConfiguration returns a reply of the newest epoch any replica
// reported, preferring one that names the members, or nil if none answered.
func newestConfiguration(st []*actors.StatusReply) *actors.StatusReply {
	var latest *actors.StatusReply
	for _, s := range st {
		if s == nil {
			continue
		}
		if latest == nil || s.Epoch > latest.Epoch || (s.Epoch == latest.Epoch && len(latest.Members) == 0) {
			latest = s
		}
	}
	return latest
}

// printStatusJSON prints the status as one indented JSON document. The
// types cannot fail to encode; a failed write to stdout is ignored, as the
// table's are.
func printStatusJSON(g groupStatus, w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(g)
}

// printStatusTable prints a header, one aligned row per replica asked, the
// members of the newest epoch and the primary. Every cell holds one token
// ("-" when unknown), so that each row splits into the header's columns.
func printStatusTable(g groupStatus, digest bool, w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"REPLICA", "ADDRESS", "STATUS", "ROLE", "EPOCH", "VIEW", "OP", "COMMIT", "LAG", "DROPPED"}
	if digest {
		header = append(header, "STATE")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range g.Replicas {
		fmt.Fprintln(tw, strings.Join(tableCells(r, digest), "\t"))
	}
	_ = tw.Flush()
	if len(g.Members) > 0 {
		fmt.Fprintf(w, "epoch %d members: %s\n", *g.Epoch, strings.Join(g.Members, ", "))
	}
	fmt.Fprintln(w, primaryLine(g))
}

// tableCells are the cells of one row, in the header's order.
func tableCells(r replicaStatus, digest bool) []string {
	role := r.Role
	switch role {
	case rolePrimary:
		role = primaryMark
	case "":
		role = "-"
	}
	cells := []string{strconv.Itoa(r.Replica), r.Address, r.Status, role,
		number(r.Epoch), number(r.View), number(r.Op), number(r.Commit), number(r.Lag), number(r.Dropped)}
	if digest {
		cells = append(cells, shortDigest(r.Digest))
	}
	return cells
}

// number is a cell for a number that may be unknown.
func number(n *uint64) string {
	if n == nil {
		return "-"
	}
	return strconv.FormatUint(*n, 10)
}

// shortDigest is the first statusDigestBytes of a hex digest, or "-" when
// the replica sent none.
func shortDigest(h string) string {
	if len(h) < 2*statusDigestBytes {
		return "-"
	}
	return h[:2*statusDigestBytes]
}

// primaryLine names the primary under the table, or says there is none and
// why that may be.
func primaryLine(g groupStatus) string {
	if g.Primary == nil {
		return "no primary: the group is changing views, has lost its majority, or its primary is unreachable from here"
	}
	r := g.Replicas[*g.Primary]
	return fmt.Sprintf("primary: replica %d (%s), epoch %d view %d", r.Replica, r.Address, *r.Epoch, *r.View)
}
