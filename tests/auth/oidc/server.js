// A real OpenID provider (panva/oidc-provider) for the external-issuer tests.
// Configured from the environment by tests/auth/test_external_issuer.py:
//   PORT          loopback port to listen on; the issuer is http://127.0.0.1:PORT
//   OIDC_JWKS     JSON JWK Set with private keys (the tests generate and rotate them)
//   SIGN_KID      kid of the key that signs access tokens (rotation: publish, then switch)
//   OIDC_CLIENTS  JSON [{client_id, client_secret, scope}] allowed the client_credentials grant
//   AUDIENCES     space-separated resource indicators; each becomes a JWT access-token audience
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const scopes = 'site-to-cloud-vpn:sessions:create site-to-cloud-vpn:sessions:read '
  + 'site-to-cloud-vpn:sessions:update site-to-cloud-vpn:sessions:delete site-to-cloud-vpn:assessment:assess';
const audiences = (process.env.AUDIENCES || 'urn:s2cvpn').split(' ');
const clients = JSON.parse(process.env.OIDC_CLIENTS).map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  scope: c.scope,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
}));

const provider = new Provider(issuer, {
  clients,
  jwks: JSON.parse(process.env.OIDC_JWKS),
  scopes: scopes.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => audiences[0],
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => {
        if (!audiences.includes(resource)) throw new errors.InvalidTarget();
        return {
          scope: scopes,
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256', kid: process.env.SIGN_KID } },
        };
      },
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening at ${issuer}`);
});
