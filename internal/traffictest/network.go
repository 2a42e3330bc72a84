package traffictest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Naming of what NewNetwork creates on the host. The namespace name carries
// the owning test process's pid, so a later run can tell a stale namespace
// (its process is gone) from one in use; the host end of the veth pair is
// named after the subnet only, because interface names are limited to 15
// bytes, and doubles as the lock on that subnet between test processes.
const (
	netnsPrefix = "gantry-tt-" // + <pid>-<subnet byte>
	linkPrefix  = "gtt-"       // + <subnet byte>
	// nsLink is the name of the veth end inside the namespace.
	nsLink = "eth0"
)

// subnetA.subnetB.0.0/16 is the range the test networks are cut from, one /24 each. It
// is private (RFC 1918) and clear of the ranges k8stest gives the cluster
// (10.0.0.0/24 for Services, 10.127/16 and 10.128/16 for the fake node and
// its pods); NewNetwork also skips any /24 that a route of the host covers.
const subnetA, subnetB = 10, 231

// Network is a network namespace with a veth pair to the host: the host
// end has the subnet's .1, backends get .2, .3, ... inside the namespace.
// Traffic between the host (Traefik, Prometheus, the test) and a backend
// crosses a real interface to a non-loopback address, which is what an
// EndpointSlice requires.
type Network struct {
	name   string       // network namespace, under /run/netns
	link   string       // host end of the veth pair
	prefix netip.Prefix // 10.231.B.0/24
	host   netip.Addr   // 10.231.B.1

	mu   sync.Mutex
	next netip.Addr // the next backend address
}

// NewNetwork creates a network namespace and a veth pair for this test and
// removes them in Cleanup, after the backends started in it have stopped.
// Namespaces left behind by test processes that were killed are removed
// first. It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's
// `ip`; without them it fails the test with the fix.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("traffictest: `ip` not found: install iproute2 (apt-get install iproute2); test networks are network namespaces and veth pairs")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("traffictest: test networks need root (CAP_SYS_ADMIN, CAP_NET_ADMIN for `ip netns add` and veth pairs); this test runs as uid %d: run it as root, e.g. in the CI container", os.Geteuid())
	}
	if err := removeStaleNetworks(); err != nil {
		t.Fatalf("traffictest: removing stale test networks: %v", err)
	}
	n, err := createNetworkFor(os.Getpid())
	if err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	t.Cleanup(func() {
		if err := n.remove(); err != nil {
			t.Errorf("traffictest: %v", err)
		}
	})
	return n
}

// createNetworkFor creates a network named as owned by process pid on a
// free /24.
func createNetworkFor(pid int) (*Network, error) {
	used, err := routedPrefixes()
	if err != nil {
		return nil, err
	}
	// Several test processes may look for a free subnet at once; the
	// veth's name is the lock, so a lost race just means another try.
	var lastErr error
	for _, b := range rand.Perm(254) {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{subnetA, subnetB, byte(b + 1), 0}), 24)
		if overlapsAny(p, used) {
			continue
		}
		n, err := createNetwork(p, pid)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, errTaken) {
			return nil, fmt.Errorf("creating a test network on %s: %w", p, err)
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free /24 in %d.%d.0.0/16 for a test network (last: %v)", subnetA, subnetB, lastErr)
}

// errTaken: another network of this or another process holds the subnet.
var errTaken = errors.New("subnet in use")

func createNetwork(p netip.Prefix, pid int) (_ *Network, err error) {
	b := strconv.Itoa(int(p.Addr().As4()[2]))
	host := p.Addr().Next()
	n := &Network{
		name:   netnsPrefix + strconv.Itoa(pid) + "-" + b,
		link:   linkPrefix + b,
		prefix: p,
		host:   host,
		next:   host.Next(),
	}
	// A name taken means a parallel test of this process drew the same
	// subnet a moment earlier.
	if err := ip("netns", "add", n.name); err != nil {
		if strings.Contains(err.Error(), "File exists") {
			return nil, errTaken
		}
		return nil, err
	}
	// The peer is created inside the namespace, so no half-made pair is
	// ever left in the host's namespace. A link of that name belongs to
	// another network: undo only our namespace.
	if err := ip("link", "add", n.link, "type", "veth", "peer", "name", nsLink, "netns", n.name); err != nil {
		ip("netns", "del", n.name)
		if strings.Contains(err.Error(), "File exists") {
			return nil, errTaken
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			n.remove()
		}
	}()
	steps := [][]string{
		{"addr", "add", netip.PrefixFrom(host, 24).String(), "dev", n.link},
		{"link", "set", n.link, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
		{"-n", n.name, "link", "set", nsLink, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// remove deletes the veth pair (both ends, at once) and the namespace.
// Processes still inside the namespace keep it alive but unnamed; the
// backends' Cleanups have stopped them by now.
func (n *Network) remove() error {
	var errs []error
	if err := ip("link", "del", n.link); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	if err := ip("netns", "del", n.name); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Name is the network namespace's name (`ip netns list`).
func (n *Network) Name() string { return n.name }

// Link is the name of the host end of the veth pair.
func (n *Network) Link() string { return n.link }

// Prefix is the network's /24.
func (n *Network) Prefix() netip.Prefix { return n.prefix }

// HostAddr is the host's address on the network (.1): backends see
// connections from Traefik and the test coming from it.
func (n *Network) HostAddr() netip.Addr { return n.host }

// addAddr gives the namespace's interface its next free address.
func (n *Network) addAddr() (netip.Addr, error) {
	n.mu.Lock()
	a := n.next
	if !n.prefix.Contains(a) || a.As4()[3] == 255 {
		n.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("network %s is full", n.prefix)
	}
	n.next = a.Next()
	n.mu.Unlock()
	if err := ip("-n", n.name, "addr", "add", netip.PrefixFrom(a, 24).String(), "dev", nsLink); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// removeStaleNetworks deletes the namespaces (and with them their veth
// pairs) of test processes that have exited: nothing runs when a test
// binary is killed, so each NewNetwork cleans up after earlier runs.
func removeStaleNetworks() error {
	names, err := netnsNames()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		pid, b, ok := parseNetnsName(name)
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := ip("link", "del", linkPrefix+strconv.Itoa(b)); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
		if err := ip("netns", "del", name); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// netnsNames lists the named network namespaces NewNetwork created.
func netnsNames() ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), netnsPrefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// parseNetnsName splits gantry-tt-<pid>-<b>.
func parseNetnsName(name string) (pid, b int, ok bool) {
	pidStr, bStr, found := strings.Cut(strings.TrimPrefix(name, netnsPrefix), "-")
	if !found {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(pidStr)
	b, err2 := strconv.Atoi(bStr)
	return pid, b, err1 == nil && err2 == nil && pid > 0 && b > 0 && b < 255
}

// routedPrefixes lists the IPv4 destinations of the host's main routing
// table, except the default route: a test network must not shadow any.
func routedPrefixes() ([]netip.Prefix, error) {
	out, err := exec.Command("ip", "-4", "-o", "route", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("listing routes (ip -4 route show): %w", err)
	}
	var ps []netip.Prefix
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		dst := f[0]
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

func overlapsAny(p netip.Prefix, ps []netip.Prefix) bool {
	for _, q := range ps {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

// ip runs iproute2's ip; its stderr explains a failure.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// processAlive reports whether pid exists (signal 0 checks without
// sending anything).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
