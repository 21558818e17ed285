Feature: CAMARA Site-to-Cloud VPN API, v0.1 - Operation listSessions
  # Implementation indications:
  #   Only the caller's sessions, oldest first; page (from 1) and perPage (1..100).
  # Testing assets:
  #   A valid SessionCreate on the target's network (S2CVPN_FEATURES_SESSION_BODY); a second API client's token.
  # References to OAS spec schemas refer to openapi.yaml.

  Background: Common listSessions setup
    Given an environment at "apiRoot"
    And the resource "/site-to-cloud-vpn/v0.1/sessions"
    And the header "Authorization" is set to a valid access token
    And the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"

  @listSessions_01_generic_success_scenario
  Scenario: Common validations for any success scenario
    Given 1 sessions of the API client exist
    When the request "listSessions" is sent
    Then the response status code is 200
    And the response header "Content-Type" is "application/json"
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response body complies with the OAS schema at "#/components/schemas/SessionList"
    And the response property "$.pagination.page" is 1
    And the response property "$.items" contains the sessions of the API client

  @listSessions_02_only_own_sessions
  Scenario: A client never sees another client's sessions
    Given 1 sessions of the API client exist
    And a session of another API client exists
    When the request "listSessions" is sent
    Then the response status code is 200
    And the response property "$.items" contains the sessions of the API client
    And the response property "$.items" does not contain the session of the other API client
    And every item of the response property "$.items" complies with the OAS schema at "#/components/schemas/SessionInfo"

  @listSessions_03_pagination
  Scenario: One session per page
    Given 2 sessions of the API client exist
    And the query parameter "perPage" is set to "1"
    When the request "listSessions" is sent
    Then the response status code is 200
    And the response property "$.items" has 1 items
    And the response property "$.pagination.perPage" is 1
    And the response property "$.pagination.totalPages" is greater than 1
    And the response header "X-Total-Count" exists

  @listSessions_04_page_past_the_end
  Scenario: A page past the end is an empty list, not an error
    Given the query parameter "page" is set to "100000"
    When the request "listSessions" is sent
    Then the response status code is 200
    And the response property "$.items" has 0 items
    And the response property "$.pagination.page" is 100000

  @listSessions_400.1_out_of_range_pagination
  Scenario Outline: Pagination values out of range
    Given the query parameter "<name>" is set to "<value>"
    When the request "listSessions" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT" or "OUT_OF_RANGE"
    And the response property "$.message" contains a user friendly text

    Examples:
      | name    | value |
      | perPage | 0     |
      | perPage | 101   |
      | page    | 0     |

  @listSessions_400.2_malformed_pagination
  Scenario: Pagination value that is not a number
    Given the query parameter "perPage" is set to "ten"
    When the request "listSessions" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @listSessions_400.3_invalid_x-correlator
  Scenario: Invalid x-correlator header
    Given the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"
    When the request "listSessions" is sent
    Then the response status code is 400
    And the response header "x-correlator" is not set to the invalid value
    And the response property "$.code" is "INVALID_ARGUMENT"

  @listSessions_401.1_no_authorization_header
  Scenario: Error response for no header "Authorization"
    Given the header "Authorization" is not sent
    When the request "listSessions" is sent
    Then the response status code is 401
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"
    And the response property "$.message" contains a user friendly text

  @listSessions_401.2_expired_access_token
  Scenario: Error response for expired access token
    Given the header "Authorization" is set to an expired access token
    When the request "listSessions" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @listSessions_401.3_invalid_access_token
  Scenario: Error response for invalid access token
    Given the header "Authorization" is set to an invalid access token
    When the request "listSessions" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @listSessions_403.1_missing_access_token_scope
  Scenario: Missing access token scope
    Given the header "Authorization" is set to a valid access token which does not include scope "site-to-cloud-vpn:sessions:read"
    When the request "listSessions" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"
    And the response property "$.message" contains a user friendly text
