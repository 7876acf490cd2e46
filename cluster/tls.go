package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// grpcTLS returns the gRPC server and dial options for mutual TLS: a member
// presents its certificate and accepts only peers whose certificates the CA
// signed. A node without such a certificate cannot connect, so it cannot
// inject a message.
func grpcTLS(f *TLSFiles) ([]grpc.ServerOption, []grpc.DialOption, error) {
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: tls ca: %w", ErrConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("%w: tls ca %s holds no PEM certificate", ErrConfig, f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: tls cert/key: %w", ErrConfig, err)
	}
	server := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}
	client := &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(server))},
		[]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(client))}, nil
}
