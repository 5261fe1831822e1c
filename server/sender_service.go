package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ibmailv1 "github.com/ibmail/ibmail/gen/ibmail/v1"
	"github.com/ibmail/ibmail/store"
)

// SenderService implements ibmail.v1.SenderService.
type SenderService struct {
	ibmailv1.UnimplementedSenderServiceServer
	store store.Store
	now   func() time.Time
	rows  *rowSkippers
}

// NewSenderService returns a SenderService; rows it cannot show are logged
// to log.
func NewSenderService(st store.Store, log *slog.Logger) *SenderService {
	return &SenderService{store: st, now: time.Now, rows: newRowSkippers(log)}
}

// CreateSender validates and stores a sender account.
func (s *SenderService) CreateSender(ctx context.Context, req *ibmailv1.CreateSenderRequest) (*ibmailv1.CreateSenderResponse, error) {
	in := req.GetSender()
	if in == nil {
		return nil, invalidField("sender", "is required")
	}
	snd := store.Sender{ID: strings.TrimSpace(in.GetId()), ConnectionID: strings.TrimSpace(in.GetConnectionId())}
	if snd.ID == "" {
		snd.ID = newID("sender")
	}
	if err := checkResourceID("sender.id", snd.ID); err != nil {
		return nil, err
	}
	if snd.ConnectionID == "" {
		return nil, invalidField("sender.connection_id", "is required")
	}
	if err := checkResourceID("sender.connection_id", snd.ConnectionID); err != nil {
		return nil, err
	}
	var err error
	if snd.FromAddress, err = checkEmail("sender.from_address", in.GetFromAddress()); err != nil {
		return nil, err
	}
	if in.GetReplyTo() != "" {
		if snd.ReplyTo, err = checkEmail("sender.reply_to", in.GetReplyTo()); err != nil {
			return nil, err
		}
	}
	if err := checkText("sender.from_name", in.GetFromName(), 200); err != nil {
		return nil, err
	}
	if strings.ContainsAny(in.GetFromName(), `<>"`) {
		return nil, invalidField("sender.from_name", `must not contain <, > or ", which would change the From header`)
	}
	snd.FromName = strings.TrimSpace(in.GetFromName())
	snd.CreateTime = s.now().UTC()
	switch err := s.store.CreateSender(ctx, snd); {
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, apiError(codes.AlreadyExists, ReasonAlreadyExists, fmt.Sprintf("sender %q already exists", snd.ID))
	case errors.Is(err, store.ErrNotFound):
		return nil, apiError(codes.FailedPrecondition, ReasonNotFound, fmt.Sprintf("sender.connection_id: connection %q does not exist", snd.ConnectionID))
	case err != nil:
		return nil, err
	}
	return &ibmailv1.CreateSenderResponse{Sender: senderProto(snd)}, nil
}

// GetSender returns one sender account.
func (s *SenderService) GetSender(ctx context.Context, req *ibmailv1.GetSenderRequest) (*ibmailv1.GetSenderResponse, error) {
	if err := checkResourceID("sender_id", req.GetSenderId()); err != nil {
		return nil, err
	}
	snd, err := s.store.GetSender(ctx, req.GetSenderId())
	if err != nil {
		return nil, notFoundAs(err, "sender", req.GetSenderId())
	}
	shown, err := showOne(ctx, s.rows.senders, "sender", snd.ID, senderProto(snd))
	if err != nil {
		return nil, err
	}
	return &ibmailv1.GetSenderResponse{Sender: shown}, nil
}

// ListSenders lists sender accounts by id.
func (s *SenderService) ListSenders(ctx context.Context, req *ibmailv1.ListSendersRequest) (*ibmailv1.ListSendersResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	if req.GetConnectionId() != "" {
		if err := checkResourceID("connection_id", req.GetConnectionId()); err != nil {
			return nil, err
		}
	}
	tok, err := decodePageToken(req.GetPageToken(), queryDigest("senders", req.GetConnectionId()))
	if err != nil {
		return nil, err
	}
	rows, err := s.store.ListSenders(ctx, req.GetConnectionId(), tok.AfterKey, size+1)
	if err != nil {
		return nil, err
	}
	resp := &ibmailv1.ListSendersResponse{}
	rows, resp.NextPageToken = cutPage(rows, size, tok.Query, func(s store.Sender) pageToken { return pageToken{AfterKey: s.ID} })
	resp.Senders = showable(ctx, s.rows.senders, rows, func(s store.Sender) string { return s.ID },
		func(s store.Sender) (*ibmailv1.Sender, error) { return senderProto(s), nil })
	return resp, nil
}

// DeleteSender removes a sender account; sends already accepted keep
// going out from it.
func (s *SenderService) DeleteSender(ctx context.Context, req *ibmailv1.DeleteSenderRequest) (*ibmailv1.DeleteSenderResponse, error) {
	if err := checkResourceID("sender_id", req.GetSenderId()); err != nil {
		return nil, err
	}
	if err := s.store.DeleteSender(ctx, req.GetSenderId()); err != nil {
		return nil, notFoundAs(err, "sender", req.GetSenderId())
	}
	return &ibmailv1.DeleteSenderResponse{}, nil
}

func senderProto(s store.Sender) *ibmailv1.Sender {
	return &ibmailv1.Sender{
		Id:           s.ID,
		ConnectionId: s.ConnectionID,
		FromAddress:  s.FromAddress,
		FromName:     s.FromName,
		ReplyTo:      s.ReplyTo,
		CreateTime:   timestamppb.New(s.CreateTime),
	}
}
