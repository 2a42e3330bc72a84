package testproc

import "net"

// FreePorts returns n distinct loopback ports that were free a moment ago:
// every listener is held until all ports are chosen, so they differ.
// Another process could take one before the child binds it; on loopback in
// tests that race is acceptable.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
