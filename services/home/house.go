// Package home serves houses, their flats, the moderation of flats and the
// email subscriptions to a house's new flats (API.md).
package home

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/homeservices/homes/pkg/apperr"
)

// House is a building that holds flats.
type House struct {
	ID        int32
	Address   string
	Year      int32
	Developer *string // nil when the house has none
	CreatedAt time.Time
	// UpdateAt is when the last flat was added; CreatedAt until then.
	UpdateAt time.Time
}

// NewHouse validates a new house. The request interceptor checks the same
// rules; these checks hold for callers that bypass it.
func NewHouse(address string, year int32, developer *string, now time.Time) (*House, error) {
	if n := utf8.RuneCountInString(address); n < 1 || n > 512 {
		return nil, apperr.E(apperr.Invalid, "address must be 1 to 512 characters")
	}
	if year < 0 || int(year) > now.Year()+10 {
		return nil, apperr.E(apperr.Invalid, "year must be between 0 and the current year + 10")
	}
	if developer != nil && utf8.RuneCountInString(*developer) > 256 {
		return nil, apperr.E(apperr.Invalid, "developer must be at most 256 characters")
	}
	return &House{Address: address, Year: year, Developer: developer}, nil
}

// NormalizeEmail checks a subscription address and lowercases it, so that
// one mailbox is subscribed once whatever its spelling.
func NormalizeEmail(email string) (string, error) {
	if len(email) > 254 {
		return "", apperr.E(apperr.Invalid, "email must be at most 254 characters")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", apperr.E(apperr.Invalid, "email must be a valid address")
	}
	return strings.ToLower(email), nil
}
