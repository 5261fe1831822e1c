package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/sandbox"
	"github.com/ibmail/ibmail/secret"
)

// sandboxID is the id of the connection and the sender account that
// --sandbox provides.
const sandboxID = "sandbox"

// sandboxRun is an in-process Infobip sandbox on a loopback port, with the
// key it accepts.
type sandboxRun struct {
	baseURL string
	apiKey  string
	sb      *sandbox.Sandbox
	srv     *http.Server
}

// startSandbox serves a sandbox on a free loopback port, posting platform
// events to platformURL. Its key is new on every start; provision hands it
// to the sandbox connection.
func startSandbox(log *slog.Logger, platformURL string) (*sandboxRun, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox listener: %w", err)
	}
	r := &sandboxRun{baseURL: "http://" + lis.Addr().String(), apiKey: secret.Token(24)}
	r.sb = sandbox.New(sandbox.Options{
		APIKey:      r.apiKey,
		ReportDelay: 500 * time.Millisecond,
		// Infobip's own warning and block at 3 % and 5 %: sending many
		// hardbounce addresses shows a domain blocked.
		PlatformEventsURL: platformURL,
		Logger:            log.With(slog.String("component", "sandbox")),
	})
	r.srv = &http.Server{Handler: r.sb, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(lis) //nolint:errcheck // ends with stop
	log.Info("Infobip sandbox started", slog.String("base_url", r.baseURL))
	return r, nil
}

func (r *sandboxRun) stop() {
	r.sb.Close()
	r.srv.Close()
}

// provision makes the connection and the sender account called sandbox
// through the public API, or points an existing connection at this start's
// sandbox and key.
func (r *sandboxRun) provision(ctx context.Context, conn *grpc.ClientConn) error {
	conns := ibmailv1.NewConnectionServiceClient(conn)
	c := &ibmailv1.Connection{Id: sandboxID, DisplayName: "Infobip sandbox", ApiKey: r.apiKey, BaseUrl: r.baseURL}
	_, err := conns.CreateConnection(ctx, &ibmailv1.CreateConnectionRequest{Connection: c})
	if status.Code(err) == codes.AlreadyExists {
		_, err = conns.UpdateConnection(ctx, &ibmailv1.UpdateConnectionRequest{
			ConnectionId: sandboxID, Connection: c, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"api_key", "base_url"}},
		})
	}
	if err != nil {
		return fmt.Errorf("sandbox connection: %w", err)
	}
	senders := ibmailv1.NewSenderServiceClient(conn)
	_, err = senders.CreateSender(ctx, &ibmailv1.CreateSenderRequest{Sender: &ibmailv1.Sender{
		Id: sandboxID, ConnectionId: sandboxID, FromAddress: "news@example.com", FromName: "ibmail sandbox",
	}})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return errors.Join(errors.New("sandbox sender"), err)
	}
	return nil
}
