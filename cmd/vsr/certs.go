package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vsrgo/vsr/cluster"
)

func certsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: vsr certs -dir DIR -hosts 127.0.0.1 NAME...\n\n"+
			"Makes a test CA and a certificate per NAME (say node0 node1 node2 client),\n"+
			"valid for -hosts, for trying mutual TLS out. Use your own CA in production.\n\nflags:\n")
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "vsr-certs", "directory to write the PEM files to")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "comma-separated IPs and names the certificates are valid for")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	if _, err := cluster.WriteCerts(*dir, strings.Split(*hosts, ","), fs.Args()...); err != nil {
		fmt.Fprintf(stderr, "vsr certs: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s/ca.pem and a certificate and key for each of: %s\n", *dir, strings.Join(fs.Args(), " "))
	return 0
}
