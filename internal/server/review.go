package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Review is the API server's answer about one bearer token, path and verb.
type Review struct {
	// Authenticated: TokenReview accepted the token, as User.
	Authenticated bool
	User          string
	// Allowed: SubjectAccessReview lets User use Verb on the non-resource Path.
	Allowed bool
}

// Reviewer asks whether a bearer token may use verb on path. An error means no answer could be
// had (the API server is down, or kpulse may not create reviews): the caller must refuse.
type Reviewer interface {
	Review(ctx context.Context, token, verb, path string) (Review, error)
}

// ReviewFunc adapts a function to Reviewer.
type ReviewFunc func(ctx context.Context, token, verb, path string) (Review, error)

// Review calls f.
func (f ReviewFunc) Review(ctx context.Context, token, verb, path string) (Review, error) {
	return f(ctx, token, verb, path)
}

// MaxCachedReviews bounds the review cache; past it expired answers are dropped, then any.
const MaxCachedReviews = 4096

// reviewTimeout bounds the two calls to the API server for one request.
const reviewTimeout = 5 * time.Second

// CachedReviewer remembers answers for TTL, keyed by a hash of the token with the verb and
// path (the token itself is never kept), so that a burst of requests with one token is one
// review. Errors are not remembered. The idea is kube-rbac-proxy's: authenticate with a
// TokenReview, authorize with a SubjectAccessReview on the request's path and verb
// (github.com/brancz/kube-rbac-proxy, pkg/authn and pkg/authz).
type CachedReviewer struct {
	next  Reviewer
	ttl   time.Duration
	clock clock.PassiveClock

	mu      sync.Mutex
	answers map[[sha256.Size]byte]cachedReview
}

type cachedReview struct {
	review  Review
	expires time.Time
}

// NewCachedReviewer caches next's answers for ttl.
func NewCachedReviewer(next Reviewer, ttl time.Duration, clk clock.PassiveClock) *CachedReviewer {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &CachedReviewer{next: next, ttl: ttl, clock: clk, answers: map[[sha256.Size]byte]cachedReview{}}
}

// Review answers from the cache, or asks next.
func (c *CachedReviewer) Review(ctx context.Context, token, verb, path string) (Review, error) {
	key := sha256.Sum256([]byte(verb + "\x00" + path + "\x00" + token))
	now := c.clock.Now()
	c.mu.Lock()
	if a, ok := c.answers[key]; ok && now.Before(a.expires) {
		c.mu.Unlock()
		return a.review, nil
	}
	c.mu.Unlock()

	rev, err := c.next.Review(ctx, token, verb, path)
	if err != nil {
		return Review{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.answers) >= MaxCachedReviews {
		for k, a := range c.answers {
			if !now.Before(a.expires) {
				delete(c.answers, k)
			}
		}
		for k := range c.answers { // still full: drop arbitrary entries, a quarter of them
			if len(c.answers) < MaxCachedReviews*3/4 {
				break
			}
			delete(c.answers, k)
		}
	}
	c.answers[key] = cachedReview{review: rev, expires: now.Add(c.ttl)}
	return rev, nil
}

// Len is how many answers are cached.
func (c *CachedReviewer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.answers)
}

// KubeReviewer asks the API server: a TokenReview for the token, then a SubjectAccessReview for
// its user on the non-resource path and verb. kpulse's service account needs create on
// tokenreviews and subjectaccessreviews (the ClusterRole system:auth-delegator).
type KubeReviewer struct {
	Client kubernetes.Interface
}

// Review asks the API server.
func (k KubeReviewer) Review(ctx context.Context, token, verb, path string) (Review, error) {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	tr, err := k.Client.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return Review{}, fmt.Errorf("server: TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return Review{}, nil
	}
	u := tr.Status.User
	rev := Review{Authenticated: true, User: u.Username}
	if u.Username == "" {
		return Review{}, errors.New("server: TokenReview authenticated a token without a user name")
	}
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := k.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return Review{}, fmt.Errorf("server: SubjectAccessReview for %s: %w", u.Username, err)
	}
	rev.Allowed = sar.Status.Allowed && !sar.Status.Denied
	return rev, nil
}
