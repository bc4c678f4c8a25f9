package seed

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// sigma of the lognormal number of flats per house: with a mean of 80 the
// median house has ~44 flats, one in a hundred ~560, a handful thousands.
const sigma = 1.1

var (
	streets    = []string{"Lenina", "Pushkina", "Gagarina", "Mira", "Sadovaya", "Tverskaya", "Nevsky", "Lesnaya", "Shkolnaya", "Sovetskaya", "Molodezhnaya", "Tsentralnaya", "Novaya", "Zarechnaya", "Polevaya", "Naberezhnaya"}
	cities     = []string{"Moscow", "Saint Petersburg", "Kazan", "Novosibirsk", "Yekaterinburg", "Nizhny Novgorod", "Samara", "Omsk", "Rostov-on-Don", "Ufa"}
	developers = []string{"PIK", "LSR", "Samolet", "Etalon", "Setl", "Donstroy", "Capital Group", "Ingrad", "Brusnika", "A101", "MR Group", "Level Group", "Glavstroy", "Kortros", "FSK"}
	epoch      = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
)

type generator struct {
	cfg        Config
	rng        *rand.Rand
	moderators [][16]byte
}

func newGenerator(cfg Config) *generator {
	g := &generator{cfg: cfg, rng: newRand(cfg.Seed)}
	for range 20 {
		var id [16]byte
		for i := range id {
			id[i] = byte(g.rng.UintN(256))
		}
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		g.moderators = append(g.moderators, id)
	}
	return g
}

// plan draws the number of flats of each house until they add up to
// cfg.Flats: lognormal, at least 1, at most cfg.MaxFlats.
func (g *generator) plan() []int32 {
	mu := math.Log(g.cfg.MeanFlats) - sigma*sigma/2
	var houses []int32
	left := g.cfg.Flats
	for left > 0 {
		n := int64(math.Round(math.Exp(mu + sigma*g.rng.NormFloat64())))
		n = min(max(n, 1), int64(g.cfg.MaxFlats), left)
		houses = append(houses, int32(n))
		left -= n
	}
	return houses
}

// houseCreated is when house i (0-based) was created: spread over the two
// years before epoch, in id order.
func houseCreated(i, n int) time.Time {
	return epoch.Add(-2 * 365 * 24 * time.Hour).Add(time.Duration(float64(2*365*24*time.Hour) * float64(i) / float64(max(n, 1))))
}

// ts is the text form of a timestamptz for COPY.
func ts(b []byte, t time.Time) []byte { return t.AppendFormat(b, "2006-01-02 15:04:05Z07:00") }

// writeHouses writes the houses in COPY text format, ids 1..n.
func (g *generator) writeHouses(w *bufio.Writer, houses []int32, withDeveloper *int64) error {
	var b []byte
	for i, n := range houses {
		created := houseCreated(i, len(houses))
		b = strconv.AppendInt(b[:0], int64(i+1), 10)
		b = fmt.Appendf(b, "\t%s st. %d, %s\t%d\t", streets[g.rng.IntN(len(streets))], 1+g.rng.IntN(200),
			cities[g.rng.IntN(len(cities))], 1950+g.rng.IntN(85))
		if g.rng.Float64() < 0.6 {
			b = append(b, developers[g.rng.IntN(len(developers))]...)
			*withDeveloper++
		} else {
			b = append(b, `\N`...)
		}
		b = append(b, '\t')
		b = ts(b, created)
		b = append(b, '\t')
		b = ts(b, created.Add(time.Duration(n)*time.Minute))
		b = append(b, '\t')
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeFlats writes the flats house by house, numbered 1..n in each, with
// ids in the same order. byStatus counts what was written.
func (g *generator) writeFlats(w *bufio.Writer, houses []int32, byStatus map[string]int64) error {
	statuses := [4]string{"approved", "created", "declined", "on moderation"}
	var counts [4]int64
	moderators := make([]string, len(g.moderators))
	for i, m := range g.moderators {
		moderators[i] = fmt.Sprintf("%x-%x-%x-%x-%x", m[0:4], m[4:6], m[6:8], m[8:10], m[10:])
	}
	var (
		b  []byte
		id int64
	)
	for h, n := range houses {
		base := houseCreated(h, len(houses))
		for number := int32(1); number <= n; number++ {
			id++
			s := 0 // approved
			if p := g.rng.Float64(); p >= g.cfg.Approved {
				// The rest: 40 % created, 40 % declined, 20 % on moderation.
				switch q := (p - g.cfg.Approved) / (1 - g.cfg.Approved); {
				case q < 0.4:
					s = 1
				case q < 0.8:
					s = 2
				default:
					s = 3
				}
			}
			counts[s]++
			rooms := int64(1 + min(g.rng.IntN(6), g.rng.IntN(6)))
			created := base.Add(time.Duration(number) * time.Minute)
			b = strconv.AppendInt(b[:0], id, 10)
			b = append(b, '\t')
			b = strconv.AppendInt(b, int64(h+1), 10)
			b = append(b, '\t')
			b = strconv.AppendInt(b, int64(number), 10)
			b = append(b, '\t')
			b = strconv.AppendInt(b, rooms*2_500_000+int64(g.rng.IntN(2_000_000)), 10)
			b = append(b, '\t')
			b = strconv.AppendInt(b, rooms, 10)
			b = append(b, '\t')
			b = append(b, statuses[s]...)
			b = append(b, '\t')
			if s == 3 {
				b = append(b, moderators[g.rng.IntN(len(moderators))]...)
			} else {
				b = append(b, `\N`...)
			}
			b = append(b, '\t')
			b = ts(b, created)
			b = append(b, '\t')
			b = ts(b, created)
			b = append(b, '\n')
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
	}
	for i, s := range statuses {
		byStatus[s] = counts[i]
	}
	return nil
}

// writeSubscriptions subscribes n distinct emails, each to one house drawn
// uniformly.
func (g *generator) writeSubscriptions(w *bufio.Writer, houses int, n int64) error {
	if houses == 0 {
		return nil
	}
	var b []byte
	for i := int64(1); i <= n; i++ {
		b = strconv.AppendInt(b[:0], int64(1+g.rng.IntN(houses)), 10)
		b = fmt.Appendf(b, "\tbuyer%d@example.com\n", i)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
