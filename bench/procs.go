package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The child processes of the loopback settings. Every child is registered
// from its start to its end, so that an error path, an interrupt (Ctrl-C)
// or a normal exit kills whatever is left: the benchmark leaves no orphans.
// On Linux a child also gets SIGKILL if this process dies without cleaning
// up (see setParentDeathSignal).

// child is a process this benchmark started.
type child struct {
	name string
	cmd  *exec.Cmd
	// stdin is the child's standard input, for the raftnode protocol; nil
	// if the child reads none.
	stdin io.WriteCloser
	// lines carries the child's standard output, line by line, when it is
	// read by protocol; it is closed at end of output.
	lines chan string
	// done is closed once the child has exited and waitErr is set.
	done    chan struct{}
	waitErr error
	// logPath holds the child's standard error (and its standard output
	// unless that is read by protocol).
	logPath string
}

var children struct {
	mu  sync.Mutex
	set map[*child]struct{}
	// closed is set once killAllChildren has begun: an interrupt may come
	// while the benchmark goes on to its next measurement, and no child
	// must start after the others were killed.
	closed bool
}

// childOptions say how a child's output is taken.
type childOptions struct {
	// protocol gives the child a standard input and reads its standard
	// output as lines (the raftnode protocol).
	protocol bool
	// stdout, if set, receives the child's standard output (e.g. the JSON
	// of `vsr bench`); otherwise it goes to the log.
	stdout io.Writer
}

// startChild starts bin with args, its output in logPath.
func startChild(name, logPath string, opts childOptions, bin string, args ...string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	c := &child{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{}), logPath: logPath}
	c.cmd.Stderr = logf
	c.cmd.Stdout = logf
	if opts.stdout != nil {
		c.cmd.Stdout = opts.stdout
	}
	setParentDeathSignal(c.cmd)
	var outR, outW *os.File
	if opts.protocol {
		// An os.Pipe rather than StdoutPipe: exec then copies nothing, so
		// Wait does not depend on the reader having drained the pipe.
		if outR, outW, err = os.Pipe(); err != nil {
			return nil, err
		}
		c.cmd.Stdout = outW
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			outR.Close()
			outW.Close()
			return nil, err
		}
	}
	// Start and registration happen under the lock, so that a child either
	// starts before killAllChildren looks (and is killed) or not at all.
	children.mu.Lock()
	if children.closed {
		err = errors.New("stopping: no new child processes")
	} else if err = c.cmd.Start(); err == nil {
		if children.set == nil {
			children.set = map[*child]struct{}{}
		}
		children.set[c] = struct{}{}
	}
	children.mu.Unlock()
	if err != nil {
		if outR != nil {
			outR.Close()
			outW.Close()
		}
		if c.stdin != nil {
			c.stdin.Close()
		}
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if outR != nil {
		outW.Close() // the child has its copy; EOF comes when it exits
		c.lines = make(chan string, 16)
		go func() {
			defer close(c.lines)
			defer outR.Close()
			sc := bufio.NewScanner(outR)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				c.lines <- sc.Text()
			}
		}()
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
		children.mu.Lock()
		delete(children.set, c)
		children.mu.Unlock()
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the child to exit by itself.
func (c *child) wait(timeout time.Duration) error {
	select {
	case <-c.done:
		return c.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %v", c.name, timeout)
	}
}

// stop asks the child to stop (SIGTERM, and end of its input) and kills it
// if it has not exited within grace; it returns once the child is gone or,
// should even SIGKILL not take effect in time, after a bounded wait.
func (c *child) stop(grace time.Duration) error {
	if c.stdin != nil {
		c.stdin.Close()
	}
	if c.exited() {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		if c.waitErr != nil {
			return fmt.Errorf("%s: %w%s", c.name, c.waitErr, c.logTail())
		}
		return nil
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
		return fmt.Errorf("%s did not stop within %v of SIGTERM and was killed", c.name, grace)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) did not die within 5s of SIGKILL", c.name, c.pid())
	}
}

// stopChildren stops cs all at once (each is given 5s to stop cleanly) and
// joins their errors.
func stopChildren(cs []*child) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { errs[i] = c.stop(5 * time.Second) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logTail is the end of the child's log, for an error message.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	const most = 1500
	if len(b) > most {
		b = b[len(b)-most:]
	}
	return fmt.Sprintf("\n--- end of %s's log (%s) ---\n%s", c.name, c.logPath, strings.TrimRight(string(b), "\n"))
}

// killAllChildren kills every child still running and waits (bounded) for
// each to be reaped.
func killAllChildren() {
	children.mu.Lock()
	children.closed = true
	var list []*child
	for c := range children.set {
		list = append(list, c)
	}
	children.mu.Unlock()
	for _, c := range list {
		_ = c.cmd.Process.Kill()
	}
	for _, c := range list {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			fmt.Fprintf(os.Stderr, "bench: %s (pid %d) did not die within 5s of SIGKILL\n", c.name, c.pid())
		}
	}
}

// interrupted reports whether killAllChildren has begun, as on an
// interrupt: nothing more can be measured.
func interrupted() bool {
	children.mu.Lock()
	defer children.mu.Unlock()
	return children.closed
}

// onInterrupt kills every child and runs cleanup when SIGINT or SIGTERM
// arrives, then exits with status 130. The returned function stops
// watching.
func onInterrupt(cleanup func()) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "\nbench: %v: stopping the child processes\n", s)
			killAllChildren()
			cleanup()
			os.Exit(130)
		case <-quit:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(quit)
	}
}

// freeAddrs finds n distinct free TCP ports on 127.0.0.1 by binding them all
// at once and releasing them. Another process may take one before the
// child binds it, so callers retry a start that fails.
func freeAddrs(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// waitListening polls until every address accepts a TCP connection, failing
// early if one of the children that should listen there has exited.
func waitListening(addrs []string, cs []*child, within time.Duration) error {
	deadline := time.Now().Add(within)
	for i, a := range addrs {
		for {
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if cs[i].exited() {
				return fmt.Errorf("%s exited (%v)%s", cs[i].name, cs[i].waitErr, cs[i].logTail())
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s is not listening at %s after %v%s", cs[i].name, a, within, cs[i].logTail())
			}
			time.Sleep(10 * time.Millisecond) // poll interval
		}
	}
	return nil
}
